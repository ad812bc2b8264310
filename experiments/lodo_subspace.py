#!/usr/bin/env python3
"""How far each held-out dataset of the real-data gauge lies outside the
subspace its training rows span (docs/pqvae_transfer.md).

For each held-out dataset: PCA of the unit-norm rows of the two other datasets
(all their rows, as the gauge trains on them); the share of a row's energy
(after subtracting the training mean) that the top-k principal directions hold,
averaged over the training rows ("in distribution") and over the held-out rows.

    /usr/bin/python3 experiments/lodo_subspace.py [DATA_DIR]

DATA_DIR: the folder of fgvc.npz, oxford_flowers.npz, ucf101.npz (default
$SEMCODEC_LODO). Needs NumPy only.
"""
import os
import sys

import numpy as np

NAMES = ["fgvc", "oxford_flowers", "ucf101"]


def load(folder, name):
    z = np.load(os.path.join(folder, name + ".npz"))
    x = np.concatenate([z[k] for k in ("train_x", "val_x", "test_x")]).astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def captured(x, directions):
    return float((np.linalg.norm(x @ directions.T, axis=1) ** 2 / np.linalg.norm(x, axis=1) ** 2).mean())


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SEMCODEC_LODO", "")
    if not folder:
        sys.exit("lodo_subspace.py: give the data folder (or set SEMCODEC_LODO)")
    data = {n: load(folder, n) for n in NAMES}
    ks = [8, 32, 128]
    print("| held out | " + " | ".join(f"top-{k}: in distribution / held out" for k in ks) + " | distance of the means |")
    print("|---|" + "---:|" * (len(ks) + 1))
    for held in NAMES:
        train = np.concatenate([data[n] for n in NAMES if n != held])
        mean = train.mean(0)
        _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
        cells = [f"{captured(train - mean, vt[:k]):.2f} / {captured(data[held] - mean, vt[:k]):.2f}" for k in ks]
        shift = np.linalg.norm(data[held].mean(0) - mean)
        print(f"| {held} | " + " | ".join(cells) + f" | {shift:.3f} |")


if __name__ == "__main__":
    main()
