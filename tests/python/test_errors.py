"""Errors: arguments of the wrong type or shape are TypeError / ValueError naming
the call; failures of the library (files, streams, checkpoints) are
semcodec.Error carrying the C++ message."""
from __future__ import annotations

import numpy as np
import pytest

import semcodec


def test_error_class():
    assert issubclass(semcodec.Error, RuntimeError)


def test_missing_files(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(semcodec.Error, match="nope.safetensors"):
        semcodec.Codec.load(str(missing))
    with pytest.raises(semcodec.Error, match="nope.h5"):
        semcodec.read_features(tmp_path / "nope.h5")


def test_not_a_checkpoint_or_feature_file(tmp_path, paths):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(semcodec.Error, match="junk.safetensors"):
        semcodec.Codec.load(str(junk))
    with pytest.raises(semcodec.Error, match="junk.h5"):
        (tmp_path / "junk.h5").write_bytes(b"not hdf5")
        semcodec.read_features(tmp_path / "junk.h5")
    with pytest.raises(semcodec.Error):
        semcodec.read_features(paths["learned_sq"])  # a checkpoint is not a feature file


def test_unknown_device(paths):
    with pytest.raises(semcodec.Error, match="device"):
        semcodec.Codec.load(paths["learned_sq"], device="tpu")


def test_wrong_shapes(sq_codec, rows):
    with pytest.raises(ValueError, match=r"Codec.encode\(x\): expected shape \[N, 64\], got \(10, 63\)"):
        sq_codec.encode(rows[:10, :63])
    with pytest.raises(ValueError, match=r"expected shape \[N, 64\], got \(64,\)"):
        sq_codec.encode(rows[0])
    with pytest.raises(ValueError, match=r"got \(2, 5, 64\)"):
        sq_codec.indices(rows[:10].reshape(2, 5, 64))
    with pytest.raises(ValueError, match=r"Codec.dequantize\(indices\): expected shape \[N, 64\]"):
        sq_codec.dequantize(np.zeros((3, 5), np.int64))
    with pytest.raises(ValueError, match=r"Codec.reconstruct\(x\): expected shape \[N, 64\], got \(3, 5\)"):
        sq_codec.reconstruct(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="a packet holds one embedding"):
        sq_codec.encode_packet(rows[:2])
    with pytest.raises(ValueError, match=r"expected shape \[64\]"):
        sq_codec.encode_packet(rows[0, :10])


def test_wrong_dtypes(sq_codec, rows):
    with pytest.raises(TypeError, match=r"Codec.encode\(x\): expected floating-point values .* got dtype int64"):
        sq_codec.encode(np.ones((3, 64), np.int64))
    with pytest.raises(TypeError, match="got dtype bool"):
        sq_codec.encode(np.ones((3, 64), bool))
    with pytest.raises(TypeError, match="complex"):
        sq_codec.encode(np.ones((3, 64), np.complex64))
    with pytest.raises(TypeError, match="dtype <U"):
        sq_codec.encode("not an array")
    with pytest.raises(TypeError, match=r"dequantize\(indices\): expected integers, got dtype float32"):
        sq_codec.dequantize(np.zeros((3, 64), np.float32))
    with pytest.raises(TypeError, match=r"decode\(stream\): expected bytes .* got str"):
        sq_codec.decode("SCB1")
    with pytest.raises(TypeError, match="expected contiguous bytes"):
        sq_codec.decode(rows)  # a float buffer is not a stream


def test_non_finite_values(sq_codec, rows):
    bad = rows[:5].copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="row 3 holds a non-finite value"):
        sq_codec.encode(bad)
    bad[3, 7] = np.inf
    with pytest.raises(ValueError, match="row 3"):
        sq_codec.indices(bad)


def test_indices_out_of_range(sq_codec, rows):
    idx = sq_codec.indices(rows[:4])
    idx[2, 5] = 4  # K = 4
    with pytest.raises(ValueError, match=r"dequantize\(indices\): index 4 at row 2, slot 5 is outside \[0, 4\)"):
        sq_codec.dequantize(idx)
    idx[2, 5] = -1
    with pytest.raises(ValueError, match="outside"):
        sq_codec.dequantize(idx)


def test_corrupt_streams(sq_codec, rows):
    stream = sq_codec.encode(rows[:10])
    with pytest.raises(semcodec.Error, match="magic"):
        sq_codec.decode(b"XXXX" + stream[4:])
    with pytest.raises(semcodec.Error):
        sq_codec.decode(stream[:-1])  # truncated
    with pytest.raises(semcodec.Error, match="trailing"):
        sq_codec.decode(stream + b"\x00")
    with pytest.raises(semcodec.Error):
        sq_codec.decode(stream[:20])  # shorter than a header
    with pytest.raises(semcodec.Error):
        sq_codec.decode(b"")
    with pytest.raises(semcodec.Error):
        sq_codec.rate(stream[:-3])
    with pytest.raises(semcodec.Error):
        sq_codec.decode_packet(b"\x10\x00")


def test_stream_of_another_checkpoint(sq_codec, other_sq_codec, rows):
    assert sq_codec.slots == other_sq_codec.slots and sq_codec.fingerprint != other_sq_codec.fingerprint
    stream = other_sq_codec.encode(rows[:10])
    with pytest.raises(semcodec.Error, match="made with another checkpoint") as e:
        sq_codec.decode(stream)
    assert other_sq_codec.fingerprint[:8] in str(e.value)
    with pytest.raises(semcodec.Error, match="another checkpoint"):
        sq_codec.decode_indices(stream)
    with pytest.raises(semcodec.Error, match="another checkpoint"):
        sq_codec.bits_per_item(stream)
    packet = other_sq_codec.encode_packet(rows[0])
    with pytest.raises(semcodec.Error, match="fingerprint"):
        sq_codec.decode_packet(packet)


def test_write_features_errors(tmp_path, rows):
    p = tmp_path / "x.h5"
    y = np.zeros(len(rows), np.int64)
    with pytest.raises(ValueError, match=r"label 3 of row 0 is outside \[0, 2\)"):
        semcodec.write_features(p, rows, y + 3, ["a", "b"])
    with pytest.raises(ValueError, match="labels"):
        semcodec.write_features(p, rows, y[:-1], ["a"])
    with pytest.raises(TypeError, match="integers"):
        semcodec.write_features(p, rows, y.astype(np.float32), ["a"])
    with pytest.raises(TypeError, match="sequence of str"):
        semcodec.write_features(p, rows, y, "a")
    with pytest.raises(ValueError, match="class_embeddings"):
        semcodec.write_features(p, rows, y, ["a"], class_embeddings=np.ones((2, 64), np.float32))
    with pytest.raises(ValueError, match="ids"):
        semcodec.write_features(p, rows, y, ["a"], ids=["r"])
    zero = rows.copy()
    zero[4] = 0
    with pytest.raises(ValueError, match="row 4 is all zeros"):
        semcodec.write_features(p, zero, y, ["a"])
    with pytest.raises(ValueError, match="dtype"):
        semcodec.write_features(p, rows, y, ["a"], dtype="int8")
    (tmp_path / "a_file").write_text("")
    with pytest.raises(semcodec.Error, match="a_file"):
        semcodec.write_features(tmp_path / "a_file" / "x.h5", rows, y, ["a"])  # a file where a folder should be
    assert not p.exists()
