"""Fixtures of the Python tests: the synthetic feature file and checkpoints of
tests/python/checkpoints.py (trained by the CLI), loaded codecs, a CLI runner."""
from __future__ import annotations

import numpy as np
import pytest

import checkpoints
import semcodec

METHODS = ["learned_sq", "faiss_pq", "adaptive_klt", "pqvae_shared"]


@pytest.fixture(scope="session")
def paths():
    return checkpoints.ensure()


@pytest.fixture(scope="session")
def data(paths):
    return semcodec.read_features(paths["features"])


def _codec(paths, name):
    if name not in paths:
        pytest.skip(f"{name}: not trained (semcodec built without FAISS)")
    return semcodec.Codec.load(paths[name])


@pytest.fixture(scope="session", params=METHODS)
def method_codec(request, paths):
    """Each method's codec in turn."""
    return _codec(paths, request.param)


@pytest.fixture(scope="session")
def sq_codec(paths):
    return _codec(paths, "learned_sq")


@pytest.fixture(scope="session")
def other_sq_codec(paths):
    return _codec(paths, "learned_sq_other")


@pytest.fixture(scope="session")
def rows(data):
    """A fixed subset of rows (every 7th), as float32 C-contiguous."""
    return np.ascontiguousarray(data.features[::7])


@pytest.fixture()
def cli():
    return checkpoints.run_cli
