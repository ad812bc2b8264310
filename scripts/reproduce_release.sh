#!/usr/bin/env bash
# The paper's numbers from the authors' own files (docs/reproduce.md): imports every feature file of
# their release (CLIP_compress), converts every released checkpoint and evaluates each on each dataset.
#   $SEMCODEC_RELEASE_FEATURES     folder of the release's feature files: <name>.pt, torch.save((features,
#                                  labels)), each with its class text embeddings <name>_text_features.pt
#   $SEMCODEC_RELEASE_CHECKPOINTS  folder of the release's checkpoints (*.pt state dicts)
#   $SEMCODEC_RELEASE_TRAIN_SET    the <name> the checkpoints were trained on (default imagenet): its
#                                  converted checkpoints carry the class split of $SEMCODEC_RELEASE_CONFIG
#                                  (default configs/paper_recipe.yaml, the paper's 800/200 split), so
#                                  they are evaluated on its held-out classes, and on every class elsewhere
#   $SEMCODEC_RELEASE_OUT          output folder (default runs/release): data/<name>.h5,
#                                  checkpoints/<ckpt>.safetensors, eval/<ckpt>/<name>.json (+ .md)
#   $SEMCODEC_BIN                  the semcodec binary (default build/semcodec)
# Extra arguments go to `semcodec convert-release` (e.g. --set data.split.mode=seed).
# Nothing is downloaded here; finished outputs are kept (delete them to redo a step).
set -euo pipefail
cd "$(dirname "$0")/.."
features=${SEMCODEC_RELEASE_FEATURES:?set SEMCODEC_RELEASE_FEATURES to the folder of the feature .pt files of the release}
checkpoints=${SEMCODEC_RELEASE_CHECKPOINTS:?set SEMCODEC_RELEASE_CHECKPOINTS to the folder of the checkpoints of the release}
train_set=${SEMCODEC_RELEASE_TRAIN_SET:-imagenet}
config=${SEMCODEC_RELEASE_CONFIG:-configs/paper_recipe.yaml}
out=${SEMCODEC_RELEASE_OUT:-runs/release}
bin=${SEMCODEC_BIN:-build/semcodec}
mkdir -p "$out/data" "$out/checkpoints" "$out/eval"

names=()
for f in "$features"/*.pt; do
  [ -e "$f" ] || { echo "no .pt feature files in $features" >&2; exit 1; }
  name=$(basename "$f" .pt)
  case "$name" in *_text_features) continue ;; esac
  names+=("$name")
  [ -f "$out/data/$name.h5" ] && continue
  text=()
  [ -f "$features/${name}_text_features.pt" ] && text=(--text-embeddings "$features/${name}_text_features.pt")
  $bin import --features "$f" --labels "$f" "${text[@]}" --dataset "$name" --encoder-model ViT-L/14@336px \
    -o "$out/data/$name.h5"
done
[ -f "$out/data/$train_set.h5" ] || { echo "no $train_set.pt in $features (set SEMCODEC_RELEASE_TRAIN_SET)" >&2; exit 1; }

for c in "$checkpoints"/*.pt; do
  [ -e "$c" ] || { echo "no .pt checkpoints in $checkpoints" >&2; exit 1; }
  ck=$(basename "$c" .pt)
  target="$out/checkpoints/$ck.safetensors"
  if [ ! -f "$target" ]; then
    $bin convert-release --state-dict "$c" -c "$config" --features "$out/data/$train_set.h5" -o "$target" "$@"
    $bin fit-entropy -q --checkpoint "$target" >/dev/null
  fi
  mkdir -p "$out/eval/$ck"
  for name in "${names[@]}"; do
    [ -f "$out/eval/$ck/$name.json" ] && continue
    $bin eval --checkpoint "$target" --features "$out/data/$name.h5" --label "$ck" -o "$out/eval/$ck/$name.json"
  done
done
echo "results: $out/eval/<checkpoint>/<dataset>.json (and .md)"
