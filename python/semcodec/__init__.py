"""semcodec from Python: compress CLIP embeddings to a few hundred bits.

    import numpy as np, semcodec
    codec = semcodec.Codec.load("runs/quickstart/pqvae-shared-400/best.safetensors")
    data = semcodec.read_features("runs/quickstart/synthetic.h5")
    stream = codec.encode(data.features[:1000])        # bytes, as `semcodec compress`
    x_hat = codec.decode(stream)                        # [1000, D] float32
    print(codec.bits_per_item(stream), codec.fingerprint[:16], codec.settings)

The codec and the feature files are the C++ library's (the compiled module
semcodec._semcodec); docs/python.md describes every function.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

import numpy as np

from ._semcodec import Codec, Error, __version__, set_num_threads
from . import _semcodec

__all__ = ["Codec", "Error", "Features", "read_features", "write_features", "set_num_threads", "__version__"]


@dataclasses.dataclass
class Features:
    """What a feature file holds (docs/feature-store.md)."""

    features: np.ndarray                    # [N, D] float32 (float16 files are converted)
    labels: np.ndarray                      # [N] int64, index into class_names
    class_names: np.ndarray                 # [C] str
    class_embeddings: Optional[np.ndarray]  # [C, D] float32 text embeddings, or None
    ids: Optional[np.ndarray]               # [N] str, or None when the file has no ids
    image_sizes: Optional[np.ndarray]       # [N, 2] int32 (height, width), or None
    attrs: dict                             # encoder_model, dataset, split, preprocessing, tool_version

    def __len__(self) -> int:
        return int(self.features.shape[0])


def read_features(path: str | os.PathLike) -> Features:
    """Reads and validates a feature file (.h5) as the CLI does; raises semcodec.Error naming the problem."""
    d = _semcodec._read_features(os.fspath(path))
    return Features(
        features=d["features"],
        labels=d["labels"],
        class_names=np.asarray(d["class_names"], dtype=str),
        class_embeddings=d["class_embeddings"],
        ids=None if d["ids"] is None else np.asarray(d["ids"], dtype=str),
        image_sizes=d["image_sizes"],
        attrs=d["attrs"],
    )


def write_features(path: str | os.PathLike, features, labels=None, class_names: Optional[Sequence[str]] = None, *,
                   class_embeddings=None, ids: Optional[Sequence[str]] = None, image_sizes=None,
                   encoder_model: str = "unknown", dataset: str = "unknown", split: str = "all",
                   preprocessing: str = "none", dtype: str = "float32", chunk_rows: int = 1024,
                   gzip_level: int = 0) -> None:
    """Writes a feature file that every semcodec command reads, atomically (temporary file + rename).

    features [N, D] floats (rows should be L2-normalized; non-finite or all-zero rows are refused),
    labels [N] integers in [0, C), class_names C strings; optional class_embeddings [C, D], ids N
    strings (default row_<i>), image_sizes [N, 2]. `features` may also be a Features (from
    read_features), whose fields are then written unless given. dtype: on-disk float32 or float16.
    """
    if isinstance(features, Features):
        f = features
        labels = f.labels if labels is None else labels
        class_names = f.class_names if class_names is None else class_names
        class_embeddings = f.class_embeddings if class_embeddings is None else class_embeddings
        ids = f.ids if ids is None else ids
        image_sizes = f.image_sizes if image_sizes is None else image_sizes
        if encoder_model == "unknown" and dataset == "unknown":
            encoder_model, dataset = f.attrs["encoder_model"], f.attrs["dataset"]
            split, preprocessing = f.attrs["split"], f.attrs["preprocessing"]
        features = f.features
    if labels is None or class_names is None:
        raise TypeError("write_features: labels and class_names are required")
    if isinstance(class_names, np.ndarray):
        class_names = class_names.tolist()
    if isinstance(ids, np.ndarray):
        ids = ids.tolist()
    _semcodec._write_features(os.fspath(path), features, labels, class_names, class_embeddings, ids, image_sizes,
                              encoder_model, dataset, split, preprocessing, dtype, chunk_rows, gzip_level)
