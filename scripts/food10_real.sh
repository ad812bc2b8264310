#!/usr/bin/env bash
# PQVAE-shared and the baselines on REAL OpenAI CLIP ViT-B/32 embeddings of a
# 10-class Food-101 subset kept in ../shared/data (read from there, never
# copied into the repository): imports the train and test files into
# runs/food10/, then runs configs/sweeps/food10_real.yaml (results and report in
# experiments/results/real-food10/). The set has no text embeddings, so
# accuracy is nearest-class-mean with the class means of the clean training
# features (clean test top-1: 98.2%).
# Usage: scripts/food10_real.sh [extra `semcodec sweep` options, e.g. -j 2]
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/food10
src=${SEMCODEC_FOOD10:-../shared/data/real-clip-vitb32-food10}
bin=${SEMCODEC_BIN:-build/semcodec}
[ -f "$src/train_features.npy" ] || { echo "no Food-10 embeddings at $src (set SEMCODEC_FOOD10)" >&2; exit 1; }
mkdir -p "$out"
printf '%s\n' apple_pie french_fries guacamole hamburger ice_cream omelette paella pizza sushi tacos > "$out/classes.txt"
for split in train test; do
  [ -f "$out/$split.h5" ] && continue
  $bin import --features "$src/${split}_features.npy" --labels "$src/${split}_labels.npy" \
    --class-names "$out/classes.txt" --dataset food10 --split "$split" --encoder-model ViT-B/32 -o "$out/$split.h5"
done
$bin sweep configs/sweeps/food10_real.yaml "$@"
