#!/usr/bin/env bash
# The real-data gauge: leave-one-dataset-out on REAL OpenAI CLIP ViT-B/32
# embeddings of three public datasets (FGVC aircraft, Oxford flowers, UCF101),
# read from $SEMCODEC_LODO (default ../shared/data/real-clip-vitb32-lodo: one
# .npz per dataset with train_x/y (16-shot), val_x/y, test_x/y; never copied
# into the repository). For each held-out dataset it imports
#   runs/lodo/<held-out>/train.h5  every row of the two other datasets
#                                  (their classes kept apart; L2-normalised),
#   runs/lodo/<held-out>/test.h5   the held-out test split (what is compressed),
#   runs/lodo/<held-out>/shots.h5  its 16-shot rows (the class means that score it),
# then runs configs/sweeps/lodo_b32.yaml: every method trained on train.h5,
# test.h5 compressed and scored by nearest class mean against shots.h5's means;
# results and report in experiments/results/real-b32-lodo/.
# Usage: scripts/lodo_real.sh [extra `semcodec sweep` options, e.g. -j 2]
set -euo pipefail
cd "$(dirname "$0")/.."
src=${SEMCODEC_LODO:-../shared/data/real-clip-vitb32-lodo}
bin=${SEMCODEC_BIN:-build/semcodec}
sets=(fgvc oxford_flowers ucf101)
for s in "${sets[@]}"; do
  [ -f "$src/$s.npz" ] || { echo "no $s.npz in $src (set SEMCODEC_LODO to the folder of the gauge's .npz files)" >&2; exit 1; }
done
for held in "${sets[@]}"; do
  out=runs/lodo/$held
  mkdir -p "$out"
  if [ ! -f "$out/train.h5" ]; then
    args=()
    for s in "${sets[@]}"; do
      [ "$s" = "$held" ] && continue
      for split in train val test; do
        args+=(--features "$src/$s.npz:${split}_x" --labels "$src/$s.npz:${split}_y")
      done
    done
    $bin import "${args[@]}" --dataset "lodo-minus-$held" --split all --encoder-model ViT-B/32 -o "$out/train.h5"
  fi
  [ -f "$out/test.h5" ] || $bin import --features "$src/$held.npz:test_x" --labels "$src/$held.npz:test_y" \
    --dataset "$held" --split test --encoder-model ViT-B/32 -o "$out/test.h5"
  [ -f "$out/shots.h5" ] || $bin import --features "$src/$held.npz:train_x" --labels "$src/$held.npz:train_y" \
    --dataset "$held" --split 16-shot --encoder-model ViT-B/32 -o "$out/shots.h5"
done
$bin sweep configs/sweeps/lodo_b32.yaml "$@"
