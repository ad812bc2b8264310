#!/usr/bin/env python3
"""semcodec against FAISS at equal bits, through the Python API only (docs/python.md).

For each semcodec checkpoint: the held-out classes' rows of a feature file (the
checkpoint's own class split) are compressed to a real stream, whose payload
bits per item set the budget; FAISS's product quantizer (and OPQ + PQ) is then
trained on the checkpoint's training classes with the largest M x nbits that
does not exceed that budget (fixed-length codes: exactly M x nbits bits). Both
reconstructions are scored by zero-shot top-1 against the class text
embeddings of the held-out classes (nearest class mean when the file has none)
and by mean cosine to the input, next to the uncompressed upper bound.

    PYTHONPATH=build/python python3 experiments/compare_faiss.py \\
        --features runs/quickstart/synthetic.h5 \\
        runs/quickstart/pqvae-shared-400/best.safetensors runs/quickstart/pqvae-shared-600/best.safetensors

Needs numpy, the built semcodec module and Debian's python3-faiss. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

try:
    import faiss
except ImportError:
    sys.exit("compare_faiss.py: needs FAISS for Python (Debian: apt-get install python3-faiss)")
import semcodec


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def top1(x_hat: np.ndarray, labels: np.ndarray, class_vectors: np.ndarray, classes: np.ndarray) -> float:
    """Share of rows whose most similar class (among `classes`) is their label, in percent."""
    scores = unit(x_hat) @ unit(class_vectors[classes]).T
    return 100.0 * float(np.mean(classes[np.argmax(scores, axis=1)] == labels))


def mean_cosine(x: np.ndarray, x_hat: np.ndarray) -> float:
    return float(np.mean(np.sum(unit(x) * unit(x_hat), axis=1)))


def pq_shape(dim: int, bits: float, max_nbits: int) -> tuple[int, int]:
    """The (M, nbits) with M dividing dim and M * nbits <= bits that spends the most bits
    (ties: more sub-quantizers of fewer bits, as FAISS's usual 8-bit codes are too
    large for a few hundred bits over hundreds of dims)."""
    best = None
    for nbits in range(1, max_nbits + 1):
        for m in range(1, dim + 1):
            if dim % m == 0 and m * nbits <= bits:
                if best is None or m * nbits > best[0] * best[1] or (m * nbits == best[0] * best[1] and m > best[0]):
                    best = (m, nbits)
    if best is None:
        raise ValueError(f"no product quantizer of D={dim} fits in {bits:.1f} bits")
    return best


def product_quantizer(d: int, m: int, nbits: int) -> "faiss.ProductQuantizer":
    pq = faiss.ProductQuantizer(d, m, nbits)
    # Small feature files have fewer rows than FAISS's 39 per centroid; say so once (main), not per k-means.
    pq.cp.min_points_per_centroid = 1
    return pq


def faiss_pq(train: np.ndarray, test: np.ndarray, m: int, nbits: int, opq: bool) -> np.ndarray:
    """FAISS PQ (optionally after an OPQ rotation) trained on `train`, reconstructing `test`."""
    d = train.shape[1]
    pq = product_quantizer(d, m, nbits)
    if not opq:
        pq.train(train)
        return pq.decode(pq.compute_codes(test))
    rotation = faiss.OPQMatrix(d, m)
    opq_pq = product_quantizer(d, m, nbits)  # what OPQ alternates with; kept alive while it trains
    rotation.pq = opq_pq
    rotation.train(train)
    pq.train(rotation.apply_py(train))
    return rotation.reverse_transform(pq.decode(pq.compute_codes(rotation.apply_py(test))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="semcodec checkpoints (.safetensors with entropy tables)")
    ap.add_argument("--features", required=True, help="feature file (.h5) the checkpoints were trained on")
    ap.add_argument("--max-train-rows", type=int, default=100_000, help="FAISS training rows (an even stride)")
    ap.add_argument("--max-nbits", type=int, default=8, help="largest bits per FAISS sub-quantizer")
    ap.add_argument("--no-opq", action="store_true", help="skip OPQ + PQ")
    args = ap.parse_args()

    data = semcodec.read_features(args.features)
    zero_shot = data.class_embeddings is not None
    print(f"{args.features}: {len(data)} rows x {data.features.shape[1]} dims, {len(data.class_names)} classes; "
          f"scoring: {'zero-shot (text embeddings)' if zero_shot else 'nearest class mean'}\n")
    print("| checkpoint | method | bits/item | top-1 % | mean cosine | upper bound top-1 % | encode+decode s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for path in args.checkpoints:
        codec = semcodec.Codec.load(path)
        held = np.asarray(codec.heldout_classes)
        train_classes = np.asarray(codec.train_classes)
        test_rows = np.isin(data.labels, held)
        if not test_rows.any():  # a checkpoint trained on every class: score on all rows
            held, test_rows = np.arange(len(data.class_names)), np.ones(len(data), bool)
        x, y = np.ascontiguousarray(data.features[test_rows]), data.labels[test_rows]
        train = data.features[np.isin(data.labels, train_classes)]
        train = np.ascontiguousarray(train[:: max(1, len(train) // args.max_train_rows)], dtype=np.float32)
        if zero_shot:
            class_vectors = data.class_embeddings
        else:  # class means of the held-out rows themselves: an upper bound for NCM, the same for every codec
            class_vectors = np.stack([unit(data.features[data.labels == c]).mean(0) if (data.labels == c).any()
                                      else np.zeros(x.shape[1], np.float32) for c in range(len(data.class_names))])
        clean = top1(x, y, class_vectors, held)

        t0 = time.perf_counter()
        stream = codec.encode(x)
        x_hat = codec.decode(stream)
        seconds = time.perf_counter() - t0
        bits = codec.bits_per_item(stream)
        print(f"| {path} | semcodec {codec.method} | {bits:.1f} | {top1(x_hat, y, class_vectors, held):.2f} "
              f"| {mean_cosine(x, x_hat):.4f} | {clean:.2f} | {seconds:.2f} |")

        m, nbits = pq_shape(x.shape[1], bits, args.max_nbits)
        if len(train) < 39 * (1 << nbits):
            print(f"note: FAISS gets {len(train)} training rows for {1 << nbits} centroids per sub-space "
                  f"(it advises >= {39 * (1 << nbits)})", file=sys.stderr)
        for opq in ([False] if args.no_opq else [False, True]):
            t0 = time.perf_counter()
            x_pq = faiss_pq(train, x, m, nbits, opq)
            seconds = time.perf_counter() - t0  # training included
            name = f"FAISS {'OPQ+' if opq else ''}PQ M={m} nbits={nbits}"
            print(f"| | {name} | {m * nbits:.1f} | {top1(x_pq, y, class_vectors, held):.2f} "
                  f"| {mean_cosine(x, x_pq):.4f} | {clean:.2f} | {seconds:.2f} |")
    print("\nbits/item: semcodec's payload from the coded stream; FAISS's fixed-length codes (M x nbits). "
          "FAISS times include its training.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
