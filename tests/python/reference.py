"""Independent readers for the tests, written from the format docs, not from
the C++: the SCB1 stream and packet layouts (docs/bitstream.md, adaptive
streams included) and the
safetensors tensors of a checkpoint (docs/checkpoint.md), in plain Python/numpy."""
from __future__ import annotations

import json
import struct

import numpy as np

CODERS = {0: "raw", 1: "huffman", 2: "rans"}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def parse_stream(buf: bytes) -> dict:
    """Header fields and per-item payload lengths of an SCB1 stream."""
    assert buf[:4] == b"SCB1", buf[:4]
    version, coder = buf[4], buf[5]
    (flags,) = struct.unpack_from("<H", buf, 6)
    fingerprint = buf[8:40].hex()
    items, pos = _varint(buf, 40)
    slots, pos = _varint(buf, pos)
    if flags & 1:  # adaptive (docs/bitstream.md, "Adaptive streams"): side information L_s + bytes, one message
        side, side_start = _varint(buf, pos)
        assert side_start + side <= len(buf)
        return {"version": version, "coder": CODERS[coder], "flags": flags, "fingerprint": fingerprint,
                "items": items, "slots": slots, "adaptive": True, "side_bytes": side,
                # "Rate": the payload is the side information and the message; the header all before it
                "header_bytes": side_start, "payload_bytes": len(buf) - side_start, "framing_bytes": 0}
    assert flags == 0, flags
    header = pos
    payloads = []
    for _ in range(items):
        length, pos = _varint(buf, pos)
        payloads.append(length)
        pos += length
    assert pos == len(buf), "trailing bytes"
    return {"version": version, "coder": CODERS[coder], "flags": flags, "fingerprint": fingerprint,
            "items": items, "slots": slots, "adaptive": False, "header_bytes": header, "payload_bytes": sum(payloads),
            "framing_bytes": len(buf) - header - sum(payloads), "payloads": payloads}


def parse_packet(buf: bytes) -> dict:
    return {"version": buf[0] >> 4, "coder": CODERS[buf[0] & 15], "fingerprint_prefix": buf[1:5].hex(),
            "payload_bytes": len(buf) - 5}


_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "F16": np.float16,
           "U8": np.uint8}


def safetensors(path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file (8-byte header length, JSON header, data)."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + start:base + end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out
