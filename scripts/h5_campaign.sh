#!/usr/bin/env bash
# The feature-file mutation campaign: builds tests/fuzz/h5_campaign with ASan +
# UBSan (clang, in the libFuzzer build folder) and make_data_seeds, writes seed
# feature files (the library's own, one laid out as h5py's fixed-length
# strings, and, when build/semcodec exists, files made by `semcodec synth` and
# `semcodec import`), then runs N mutants of them through everything info,
# eval, train, merge-shards, extract (resume) and embed-text read, and prints
# the figures (see h5_campaign.cpp for the verdicts).
#
#   scripts/h5_campaign.sh [--mutants N] [--seed S] [--jobs J] [--build DIR] [--out DIR]
#
# Defaults: 5000 mutants, seed 1, 2 jobs, build folder build-fuzz, output
# DIR/h5-campaign (findings/ holds each finding's mutant and log).
# Needs clang (Debian: apt-get install -y clang libclang-rt-dev).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MUTANTS=5000 SEED=1 JOBS=2 BUILD="$ROOT/build-fuzz" OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --mutants) MUTANTS="$2"; shift ;;
    --seed) SEED="$2"; shift ;;
    --jobs) JOBS="$2"; shift ;;
    --build) BUILD="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "h5_campaign.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
OUT="${OUT:-$BUILD/h5-campaign}"
command -v clang++ >/dev/null || { echo "h5_campaign.sh: clang++ not found (apt-get install -y clang libclang-rt-dev)" >&2; exit 2; }

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DSEMCODEC_LIBFUZZER=ON -DSEMCODEC_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j "${SEMCODEC_JOBS:-$(nproc)}" --target h5_campaign make_data_seeds

SEEDS="$OUT/seeds"
rm -rf "$OUT"
mkdir -p "$SEEDS"
"$BUILD/tests/make_data_seeds" "$SEEDS" --large
CLI="$ROOT/build/semcodec"
if [ -x "$CLI" ]; then
  "$CLI" synth --classes 20 --per-class 5 --dim 64 -o "$SEEDS/feature_file/synth.h5" >/dev/null
  printf 'cat\n#2 dog\nbird\n' >"$SEEDS/names.txt"
  "$CLI" import --features "$SEEDS/npy/f4_3x4.npy" --labels "$SEEDS/npy/i8_labels.npy" --class-names "$SEEDS/names.txt" \
    --feature-dtype float16 -o "$SEEDS/feature_file/import.h5" >/dev/null
else
  echo "h5_campaign.sh: $CLI not built; seeds from the library only"
fi
"$BUILD/tests/h5_campaign" --out "$OUT" --mutants "$MUTANTS" --seed "$SEED" --jobs "$JOBS" --timeout 30 "$SEEDS/feature_file"
