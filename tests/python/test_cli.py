"""The module and the CLI make and read the same bytes: `semcodec compress` of a
feature file equals Codec.encode of its rows byte for byte, and
`semcodec decompress` writes exactly Codec.decode's reconstructions.

The CLI runs with this process's OpenBLAS kernels (checkpoints.cli_env), so the
networks compute the same floats on both sides."""
from __future__ import annotations

import json

import numpy as np
import pytest

import semcodec


def test_encode_equals_cli_compress(method_codec, paths, data, cli, tmp_path):
    out = tmp_path / "cli.scb"
    cli("compress", "--checkpoint", method_codec.path, "--features", paths["features"], "-o", out, "-q")
    cli_bytes = out.read_bytes()
    py_bytes = method_codec.encode(data.features)
    assert len(py_bytes) == len(cli_bytes)
    assert py_bytes == cli_bytes


def test_decode_equals_cli_decompress(method_codec, paths, data, cli, tmp_path):
    stream = method_codec.encode(data.features)
    (tmp_path / "py.scb").write_bytes(stream)
    cli("decompress", tmp_path / "py.scb", "--checkpoint", method_codec.path, "--features", paths["features"],
        "-o", tmp_path / "recon.h5", "-q")
    recon = semcodec.read_features(tmp_path / "recon.h5")
    x_hat = method_codec.decode(stream)
    assert recon.features.shape == x_hat.shape
    np.testing.assert_array_equal(recon.features, x_hat)
    np.testing.assert_array_equal(recon.labels, data.labels)
    np.testing.assert_array_equal(recon.ids, data.ids)


def test_cli_inspect_agrees_on_rate(method_codec, data, cli, tmp_path):
    stream = method_codec.encode(data.features[:100])
    (tmp_path / "s.scb").write_bytes(stream)
    info = json.loads(cli("inspect", tmp_path / "s.scb", "--json").stdout)
    rate = method_codec.rate(stream)
    assert info["fingerprint"] == method_codec.fingerprint and info["coder"] == rate.pop("coder")
    for key, value in rate.items():
        assert info[key] == pytest.approx(value), key


def test_rows_written_from_python_compress_the_same(method_codec, data, cli, tmp_path):
    """write_features -> `semcodec compress` gives the bytes of encode() on the same rows."""
    idx = np.arange(0, len(data), 5)
    path = tmp_path / "subset.h5"
    semcodec.write_features(path, data.features[idx], data.labels[idx], data.class_names,
                            class_embeddings=data.class_embeddings)
    cli("compress", "--checkpoint", method_codec.path, "--features", path, "-o", tmp_path / "subset.scb", "-q")
    assert (tmp_path / "subset.scb").read_bytes() == method_codec.encode(data.features[idx])


def test_cli_refuses_a_corrupt_python_stream(sq_codec, data, cli, tmp_path):
    stream = sq_codec.encode(data.features[:10])[:-1]  # the last record is cut short
    (tmp_path / "bad.scb").write_bytes(stream)
    r = cli("decompress", tmp_path / "bad.scb", "--checkpoint", sq_codec.path, "-o", tmp_path / "x.h5", check=False)
    assert r.returncode == 1
    with pytest.raises(semcodec.Error) as e:
        sq_codec.decode(stream)
    # The same failure, in the same words (the CLI prefixes the file name).
    assert str(e.value) in r.stderr


def test_reconstruct_equals_cli_round_trip(method_codec, paths, data, cli, tmp_path):
    """compress then decompress, both by the CLI, give reconstruct(x) of the file's rows."""
    cli("compress", "--checkpoint", method_codec.path, "--features", paths["features"], "-o", tmp_path / "s.scb", "-q")
    cli("decompress", tmp_path / "s.scb", "--checkpoint", method_codec.path, "-o", tmp_path / "r.h5", "-q")
    np.testing.assert_array_equal(semcodec.read_features(tmp_path / "r.h5").features,
                                  method_codec.reconstruct(data.features))
