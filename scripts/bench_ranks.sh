#!/usr/bin/env bash
# Data-parallel training throughput: PQVAE-shared (the paper's network, d_sub 16,
# K 4, global batch 64) on the synthetic set with 1 rank and with N Gloo ranks
# started by `semcodec launch`, each rank with cores/N threads. Prints samples/s
# from the runs' metrics.jsonl.
# Usage: scripts/bench_ranks.sh [ranks=2] [steps=60] [key=value ...]
# (extra config overrides for both runs, e.g. model.compute_dtype=float32)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/build/semcodec"
RANKS="${1:-2}" STEPS="${2:-60}"
shift $(( $# < 2 ? $# : 2 ))
extra=()
for kv in "$@"; do extra+=(--set "$kv"); done
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
CORES="$(nproc)"
"$BIN" synth -o "$WORK/synthetic.h5" > /dev/null
common=(-q -c "$ROOT/configs/quickstart.yaml" --features "$WORK/synthetic.h5"
        --set train.epochs=1 --set "train.max_steps_per_epoch=$STEPS" --set train.val_max_rows=500 --set train.device=cpu "${extra[@]}")
rate() { python3 -c "import json,sys; print(round(json.loads(open(sys.argv[1]).readline())['samples_per_second'], 1))" "$1"; }
"$BIN" train "${common[@]}" --set "train.threads=$CORES" -o "$WORK/one" > /dev/null
"$BIN" launch --nproc "$RANKS" -- "$BIN" train "${common[@]}" --set "train.threads=$(( CORES / RANKS > 0 ? CORES / RANKS : 1 ))" \
    -o "$WORK/many" > /dev/null
echo "| ranks | threads per rank | train samples/s (global batch 64, $STEPS steps) |"
echo "|---|---|---|"
echo "| 1 | $CORES | $(rate "$WORK/one/metrics.jsonl") |"
echo "| $RANKS | $(( CORES / RANKS > 0 ? CORES / RANKS : 1 )) | $(rate "$WORK/many/metrics.jsonl") |"
