#!/usr/bin/env bash
# Builds the codec fuzz target with libFuzzer + ASan + UBSan (the pure C++
# entropy coders and bitstream, no LibTorch) and runs it.
#   scripts/run_fuzz.sh [SECONDS=600] [WORKDIR=build-fuzz] [extra libFuzzer flags...]
# Needs clang++ and libFuzzer (Debian: apt-get install -y clang libclang-rt-14-dev).
set -euo pipefail
SECONDS_TO_RUN="${1:-600}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${2:-$ROOT/build-fuzz}"
shift $(( $# > 2 ? 2 : $# )) || true
CXX="${CXX_FUZZ:-clang++}"
command -v "$CXX" >/dev/null || { echo "run_fuzz.sh: $CXX not found (apt-get install -y clang libclang-rt-14-dev)" >&2; exit 2; }
mkdir -p "$WORK/obj" "$WORK/corpus" "$WORK/seeds" "$WORK/artifacts"
# The semcodec_entropy library (every coder in its registry) and the one
# util file it needs.
SRCS=("$ROOT"/src/codec/entropy/*.cpp "$ROOT"/src/util/hash.cpp)
FLAGS=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -I"$ROOT/src" -I"$ROOT/tests/fuzz")
OBJS=()
for f in "${SRCS[@]}"; do
  o="$WORK/obj/$(basename "${f%.cpp}").o"
  OBJS+=("$o")
  "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer-no-link -c "$f" -o "$o" &
done
wait
"$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "$ROOT/tests/fuzz/fuzz_decoder.cpp" "${OBJS[@]}" -lfmt -o "$WORK/fuzz_decoder"
"$CXX" "${FLAGS[@]}" "$ROOT/tests/fuzz/make_seeds.cpp" "${OBJS[@]}" -lfmt -o "$WORK/make_seeds"
"$WORK/make_seeds" "$WORK/seeds"
echo "run_fuzz.sh: fuzzing for ${SECONDS_TO_RUN}s (corpus $WORK/corpus, crashes in $WORK/artifacts)"
exec "$WORK/fuzz_decoder" "$WORK/corpus" "$WORK/seeds" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$WORK/artifacts/" "$@"
