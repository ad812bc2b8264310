#!/usr/bin/env bash
# Trains and evaluates PQVAE-shared at 400 and 600 bits on the real OpenAI CLIP
# ViT-B/32 embeddings of a 10-class Food-101 subset kept in ../shared/data
# (read from there, never copied into the repository). The set has no text
# embeddings, so accuracy is nearest-class-mean with the class means of the
# clean training features (clean test top-1: 98.2%).
# Usage: scripts/food10_real.sh [epochs=20] [out=runs/food10]
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-20}
out=${2:-runs/food10}
src=${SEMCODEC_FOOD10:-../shared/data/real-clip-vitb32-food10}
bin=build/semcodec
mkdir -p "$out"
printf '%s\n' apple_pie french_fries guacamole hamburger ice_cream omelette paella pizza sushi tacos > "$out/classes.txt"
for split in train test; do
  $bin import --features "$src/${split}_features.npy" --labels "$src/${split}_labels.npy" \
    --class-names "$out/classes.txt" --dataset food10 --split "$split" --encoder-model ViT-B/32 -o "$out/$split.h5"
done
for k in 4 8; do
  bits=$((200 * (k == 4 ? 2 : 3)))
  $bin train -c configs/food10_vitb32.yaml --features "$out/train.h5" -o "$out/pqvae-$bits" --overwrite -q \
    --set model.codebook_size=$k --set train.epochs="$epochs" --set train.lr_step_epochs=$((epochs * 2 / 3 + 1))
  $bin eval --checkpoint "$out/pqvae-$bits/best.safetensors" --features "$out/test.h5" --classes all \
    --classifier ncm --reference "$out/train.h5" --label "PQVAE-shared $bits bits (ViT-B/32 Food-10)" \
    --via-bitstream -o "$out/eval-$bits.json"
done
