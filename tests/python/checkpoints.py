"""Small checkpoints for the Python tests, trained with the CLI.

CTest runs this file once before the tests (the python:checkpoints fixture);
pytest alone trains them on first use (conftest.py). Everything goes to
$SEMCODEC_TEST_WORKDIR (default: <tmp>/semcodec-python-tests); a lock lets
several test processes share one directory, and finished runs are reused.

Environment: SEMCODEC_CLI (default <repo>/build/semcodec), SEMCODEC_SOURCE_DIR
(default: this checkout), SEMCODEC_TEST_WORKDIR.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(os.environ.get("SEMCODEC_SOURCE_DIR", Path(__file__).resolve().parents[2]))
CLI = Path(os.environ.get("SEMCODEC_CLI", SOURCE / "build" / "semcodec"))
WORK = Path(os.environ.get("SEMCODEC_TEST_WORKDIR", Path(tempfile.gettempdir()) / "semcodec-python-tests"))

DIM = 64
SYNTH = ["--classes", "24", "--per-class", "30", "--dim", str(DIM), "--seed", "7"]
SPLIT = ["--set", "data.split.heldout_classes=6"]

# name -> (config, overrides). Tiny versions of configs/baselines and the quickstart.
RUNS = {
    # Learned SQ, 2 bits x 64 dims = 128 raw bits; decode is a table look-up (checked against numpy).
    "learned_sq": ("configs/baselines/learned_sq_768.yaml", ["--set", "model.sq_bits=2"]),
    # The same method on another class split: same slots and alphabets, other levels and fingerprint.
    "learned_sq_other": ("configs/baselines/learned_sq_768.yaml",
                         ["--set", "model.sq_bits=2", "--set", "data.split.seed=1"]),
    # FAISS PQ, 8 sub-quantizers of 16 centroids: 32 bits.
    "faiss_pq": ("configs/baselines/faiss_pq_400.yaml",
                 ["--set", "model.faiss_bits=32", "--set", "model.faiss_nbits=4"]),
    # Adaptive KLT: streams carry side information planned from their rows (one rANS message).
    "adaptive_klt": ("configs/baselines/learned_sq_768.yaml",
                     ["--set", "model.method=adaptive_klt", "--set", "model.klt_target_bits=96"]),
    # PQVAE-shared, a few steps of a narrow network: 25 positions x 2 sub-spaces x 2 bits = 100 raw bits.
    "pqvae_shared": ("configs/quickstart.yaml",
                     ["--set", "model.hidden_channels=32", "--set", "model.body_channels=32",
                      "--set", "model.residual_layers=1", "--set", "model.residual_channels=16",
                      "--set", "model.latent_channels=16", "--set", "model.d_sub=8",
                      "--set", "model.compute_dtype=float32", "--set", "model.quantizer_warmup_steps=5",
                      "--set", "model.init_samples=2000", "--set", "train.epochs=1",
                      "--set", "train.max_steps_per_epoch=15", "--set", "train.batch_size=32",
                      "--set", "train.lr_warmup_steps=0"]),
}


def blas_coretype() -> str | None:
    """The kernels OpenBLAS chose in this process (numpy loaded it), e.g. 'Haswell'."""
    try:
        import numpy  # noqa: F401  (loads the BLAS)
        for name in ("libopenblas.so.0", ctypes.util.find_library("openblas")):
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                return lib.openblas_get_corename().decode()
            except (OSError, AttributeError):
                continue
    except ImportError:
        pass
    return None


def cli_env() -> dict:
    """The CLI's environment: the BLAS kernels of this process, so that networks compute the same floats.

    `semcodec` switches OpenBLAS to its AVX-512 kernels on CPUs that Debian's
    OpenBLAS does not recognise (data/device.h: prefer_avx512_blas); a Python
    process keeps what numpy loaded. An explicit OPENBLAS_CORETYPE wins in both.
    """
    env = dict(os.environ)
    core = blas_coretype()
    if core and "OPENBLAS_CORETYPE" not in env:
        env["OPENBLAS_CORETYPE"] = core
    return env


def run_cli(*args, check=True, **kw) -> subprocess.CompletedProcess:
    if not CLI.exists():
        raise FileNotFoundError(f"semcodec CLI not found at {CLI} (build it, or set SEMCODEC_CLI)")
    return subprocess.run([str(CLI), *map(str, args)], check=check, capture_output=True, text=True,
                          env=cli_env(), **kw)


def ensure() -> dict:
    """Paths of the synthetic feature file and of every checkpoint (training those missing)."""
    WORK.mkdir(parents=True, exist_ok=True)
    out = {"features": WORK / "synth.h5"}
    with open(WORK / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out["features"].exists():
            run_cli("synth", "-o", out["features"], *SYNTH)
        for name, (config, overrides) in RUNS.items():
            run_dir = WORK / name
            ckpt = run_dir / "best.safetensors"
            if not ckpt.exists():
                r = run_cli("train", "-c", SOURCE / config, "--features", out["features"], "-o", run_dir,
                            "--overwrite", "-q", *SPLIT, "--set", f"model.embed_dim={DIM}", *overrides, check=False)
                if r.returncode != 0 and "without FAISS" in r.stderr:
                    continue  # a build without FAISS: its tests skip
                if r.returncode != 0:
                    raise subprocess.CalledProcessError(r.returncode, r.args, r.stdout, r.stderr)
            out[name] = ckpt
    return out


if __name__ == "__main__":
    try:
        paths = ensure()
    except subprocess.CalledProcessError as e:
        sys.stderr.write(f"{' '.join(map(str, e.cmd))} failed ({e.returncode}):\n{e.stdout}\n{e.stderr}\n")
        sys.exit(1)
    for k, v in paths.items():
        print(f"{k}: {v}")
