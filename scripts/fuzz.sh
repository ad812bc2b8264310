#!/usr/bin/env bash
# Fuzzes every untrusted-input reader with libFuzzer + ASan + UBSan: builds the
# fuzz targets with clang in a separate build folder (SEMCODEC_LIBFUZZER=ON) and
# runs each for the given time from its committed seeds (tests/fuzz/corpus/<target>),
# then prints each target's executions, coverage and findings. (CI replays the
# same corpora through the normal build's replay drivers: ctest -R _replay.)
#
#   scripts/fuzz.sh [--seconds N] [--build DIR] [TARGET...]
#
# TARGET: decoder feature_file npy safetensors image torch_archive run_config checkpoint
# (default: all eight);
# N defaults to 600 per target. The grown corpus goes to DIR/fuzz-corpus/<target>,
# crashes to DIR/fuzz-artifacts/<target>/, logs to DIR/fuzz-logs/<target>.log
# (DIR defaults to build-fuzz). Exit status 1 when any target found something.
# Needs clang and libFuzzer (Debian: apt-get install -y clang libclang-rt-dev).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH=600
BUILD="$ROOT/build-fuzz"
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH="$2"; shift ;;
    --build) BUILD="$2"; shift ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    *) TARGETS+=("$1") ;;
  esac
  shift
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(decoder feature_file npy safetensors image torch_archive run_config checkpoint)
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (apt-get install -y clang libclang-rt-dev)" >&2; exit 2; }

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DSEMCODEC_LIBFUZZER=ON -DSEMCODEC_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j "${SEMCODEC_JOBS:-$(nproc)}" --target "${TARGETS[@]/#/fuzz_}"

status=0
summary=()
for t in "${TARGETS[@]}"; do
  corpus="$BUILD/fuzz-corpus/$t" artifacts="$BUILD/fuzz-artifacts/$t/" log="$BUILD/fuzz-logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  echo "fuzz.sh: fuzz_$t for ${SECONDS_EACH}s (log $log)"
  seeds=("$ROOT/tests/fuzz/corpus/$t")
  [ "$t" = torch_archive ] && seeds+=("$ROOT/tests/fixtures")
  max_len=()
  [ "$t" = decoder ] && max_len=(-max_len=4096)
  rc=0
  "$BUILD/tests/fuzz_$t" "$corpus" "${seeds[@]}" -max_total_time="$SECONDS_EACH" -timeout=30 \
    -rss_limit_mb=3072 -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" "${max_len[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/\1 edges, \2 features/p' <<<"$last")
  found=$(find "$artifacts" -type f | wc -l)
  summary+=("fuzz_$t: ${execs:-?} executions, coverage ${cov:-?}, corpus $(find "$corpus" -type f | wc -l) inputs, $found findings (exit $rc)")
  [ "$rc" -eq 0 ] && [ "$found" -eq 0 ] || status=1
done
printf '%s\n' "${summary[@]}"
exit $status
