#!/usr/bin/env bash
# Writes the seed corpus of fuzz_checkpoint (tests/fuzz/corpus/checkpoint/):
# one small trained checkpoint per method, made by the semcodec binary given
# (default build/semcodec) on a 64-dimensional synthetic set. The committed
# seeds came from this script; rerun it when the checkpoint format changes.
#
#   tests/fuzz/make_checkpoint_seeds.sh [SEMCODEC]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
B="${1:-$ROOT/build/semcodec}"
OUT="$ROOT/tests/fuzz/corpus/checkpoint"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
"$B" synth -o "$WORK/s.h5" --classes 20 --per-class 12 --dim 64 --seed 3 >/dev/null
NET="model: {embed_dim: 64, hidden_channels: 16, body_channels: 8, residual_channels: 8, latent_channels: 8,
  d_sub: 4, codebook_size: 4, init_samples: 200, quantizer_warmup_steps: 2}
train: {epochs: 1, batch_size: 16, threads: 1}"
seed() {  # name, model keys (YAML flow entries) or "net:<method>"
  local name="$1" body="$2"
  if [[ "$body" == net:* ]]; then
    printf 'data: {split: {heldout_classes: 5}}\n%s\n' "${NET/model: \{/model: {method: ${body#net:}, }" >"$WORK/$name.yaml"
  else
    printf 'data: {split: {heldout_classes: 5}}\nmodel: {embed_dim: 64, %s}\n' "$body" >"$WORK/$name.yaml"
  fi
  "$B" train -q -c "$WORK/$name.yaml" --features "$WORK/s.h5" -o "$WORK/$name" >/dev/null
  cp "$WORK/$name/best.safetensors" "$OUT/$name.safetensors"
}
seed pqvae_shared net:pqvae_shared
seed vqvae_kmeans_pq net:vqvae_kmeans_pq
seed learned_sq "method: learned_sq, sq_bits: 2"
seed learned_sq_per_dim "method: learned_sq_per_dim, sq_bits: 1"
seed faiss_pq "method: faiss_pq, faiss_bits: 32, faiss_nbits: 4"
seed faiss_opq "method: faiss_opq, faiss_bits: 32, faiss_nbits: 4"
seed faiss_rq "method: faiss_rq, faiss_bits: 24, faiss_nbits: 4, faiss_rq_beam: 2"
seed faiss_lsq "method: faiss_lsq, faiss_bits: 16, faiss_nbits: 4"
seed int4 "method: int4"
seed adaptive_klt "method: adaptive_klt, klt_target_bits: 64"
ls -l "$OUT"
