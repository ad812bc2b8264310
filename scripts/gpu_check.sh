#!/usr/bin/env bash
# Everything a GPU session has to measure and check, in one call (GPU time is
# scarce: one build, then every check with its own time limit, keeping on
# after a failure). Writes a Markdown report and the raw logs.
#
#   bash scripts/gpu_check.sh                      # on a CUDA machine
#   bash scripts/gpu_check.sh --device cpu --quick --build-dir build   # dry run of the script itself
#
# On the lent GPU machine (10 minutes a call), split it over calls that each fit:
#   source .deps/unpack.sh; bash scripts/gpu_check.sh --only tests               # build + CUDA tests
#   source .deps/unpack.sh; bash scripts/gpu_check.sh --skip-build --only pqvae,epoch,clip,extract
#   source .deps/unpack.sh; bash scripts/gpu_check.sh --skip-build --only sweep
# (carry .deps and build-gpu; the CLIP fixtures are in tests/fixtures/clip-tiny).
#
# Options:
#   --device cuda|cpu     where the benchmarks run (default cuda)
#   --build-dir DIR       build tree (default build-gpu; configured if it has no build.ninja)
#   --out DIR             report folder (default $OUT when set, else gpu-check)
#   --quick               small sizes everywhere (minutes on a CPU; checks the script)
#   --skip-build          use the build tree as it is
#   --only LIST           comma-separated subset of: tests,pqvae,epoch,clip,extract,sweep
# The build uses python3's PyTorch (torch.utils.cmake_prefix_path) unless
# CMAKE_PREFIX_PATH is set. Time limits per step: SEMCODEC_GPU_STEP_S (default 300).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DEVICE=cuda BUILD=build-gpu OUTDIR="${OUT:-gpu-check}" QUICK=0 SKIP_BUILD=0 ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift ;;
    --build-dir) BUILD="$2"; shift ;;
    --out) OUTDIR="$2"; shift ;;
    --quick) QUICK=1 ;;
    --skip-build) SKIP_BUILD=1 ;;
    --only) ONLY="$2"; shift ;;
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu_check.sh: --device must be cuda or cpu" >&2; exit 2 ;; esac

mkdir -p "$OUTDIR/logs"
OUTDIR="$(cd "$OUTDIR" && pwd)"
REPORT="$OUTDIR/gpu_check.md"
STEP_S="${SEMCODEC_GPU_STEP_S:-300}"
JOBS="$(nproc 2>/dev/null || echo 2)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/semcodec-gpu-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
FAILED=()

wanted() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
note() { echo "$*" | tee -a "$REPORT"; }
# step NAME CMD...: runs CMD under the step time limit, log in logs/NAME.log,
# its stdout's table lines and the outcome in the report.
step() {
  local name="$1"; shift
  local log="$OUTDIR/logs/$name.log" t0=$SECONDS rc
  echo "gpu_check.sh: $name ..." >&2
  timeout --kill-after=10 "$STEP_S" "$@" >"$log" 2>&1
  rc=$?
  grep -E '^(\||#)' "$log" >>"$REPORT" || true
  if [ $rc -eq 0 ]; then
    note "- $name: ok in $((SECONDS - t0)) s"
  else
    [ $rc -eq 124 ] && note "- $name: **timed out** after ${STEP_S} s (log: logs/$name.log)" ||
      note "- $name: **failed** (exit $rc) in $((SECONDS - t0)) s; last lines:"
    [ $rc -eq 124 ] || { echo '```'; tail -15 "$log"; echo '```'; } >>"$REPORT"
    FAILED+=("$name")
  fi
  echo >>"$REPORT"
  return 0
}

: >"$REPORT"
note "# semcodec GPU check ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
note ""
if command -v nvidia-smi >/dev/null; then
  note "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | paste -sd';')"
else
  note "GPU: none (nvidia-smi absent); device $DEVICE"
fi
note "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
note ""

# --- build -----------------------------------------------------------------
if [ "$SKIP_BUILD" = 0 ]; then
  if [ ! -f "$BUILD/build.ninja" ]; then
    PREFIX="${CMAKE_PREFIX_PATH:-$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)}"
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release ${PREFIX:+-DCMAKE_PREFIX_PATH="$PREFIX"} \
      >"$OUTDIR/logs/configure.log" 2>&1 ||
      { note "configure failed:"; tail -30 "$OUTDIR/logs/configure.log" | tee -a "$REPORT"; exit 1; }
  fi
  grep -h "semcodec:" "$OUTDIR/logs/configure.log" 2>/dev/null | sed 's/^-- /- /' >>"$REPORT"
  t0=$SECONDS
  cmake --build "$BUILD" -j"$JOBS" --target semcodec test_models test_train test_data test_cli \
    bench_pqvae bench_clip bench_extract >"$OUTDIR/logs/build.log" 2>&1 ||
    { note "build failed:"; grep -m20 -E 'error|Error' "$OUTDIR/logs/build.log" | tee -a "$REPORT"; exit 1; }
  note "- build: $((SECONDS - t0)) s with $JOBS jobs"
  note ""
fi
BIN="$ROOT/$BUILD"
[ -x "$BIN/semcodec" ] || BIN="$BUILD"
[ -x "$BIN/semcodec" ] || { echo "gpu_check.sh: no semcodec binary in $BUILD" >&2; exit 1; }

# --- the CUDA tests (skipped with a warning where there is no GPU) ------------
if wanted tests; then
  note "## CUDA tests"
  step cuda-tests bash -c "cd '$BIN' && ctest -R CUDA --output-on-failure --timeout 600"
  grep -E 'tests passed|tests failed|Failed|Passed' "$OUTDIR/logs/cuda-tests.log" | tail -12 >>"$REPORT" || true
  note ""
fi

if [ "$QUICK" = 1 ]; then STEPS=5 BATCHES="64 256" PER_CLASS=10 IMAGES=64 CLIP_BATCHES=2 CLIP_MODEL=b32
else STEPS=50 BATCHES="64 256 1024 4096" PER_CLASS=50 IMAGES=4096 CLIP_BATCHES=32,64,128,256 CLIP_MODEL=l14-336; fi

# --- PQVAE-shared training throughput ------------------------------------------
if wanted pqvae; then
  note "## PQVAE-shared training / inference throughput (bench_pqvae)"
  for dt in float32 bfloat16; do
    for b in $BATCHES; do step "pqvae-$dt-b$b" "$BIN/bench/bench_pqvae" --device "$DEVICE" --batch "$b" --steps "$STEPS" --compute-dtype "$dt"; done
  done
fi

# --- one epoch of the 800-class set (40,000 features) ------------------------
if wanted epoch; then
  note "## One training epoch on 800 classes x $PER_CLASS features (the trainer, batch 64)"
  "$BIN/semcodec" synth -o "$WORK/synthetic.h5" --classes 1000 --per-class "$PER_CLASS" >"$OUTDIR/logs/synth.log" 2>&1
  for dt in float32 bfloat16; do
    step "epoch-$dt" "$BIN/semcodec" train -q -c configs/quickstart.yaml --features "$WORK/synthetic.h5" \
      -o "$WORK/epoch-$dt" --set train.epochs=1 --set train.device="$DEVICE" --set model.compute_dtype="$dt" \
      --set train.val_max_rows=2000 --overwrite
    [ -f "$WORK/epoch-$dt/metrics.jsonl" ] && python3 - "$WORK/epoch-$dt/metrics.jsonl" "$dt" >>"$REPORT" <<'EOF'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(f"- {sys.argv[2]}: {r['samples_per_second']:.0f} train samples/s, held-out top-1 {100*r.get('val_top1', float('nan')):.2f}%")
EOF
  done
  note ""
fi

# --- CLIP encoders against the roofline ---------------------------------------
if wanted clip; then
  note "## CLIP image encoder (bench_clip; peak dense bf16/fp16: H100 SXM / H200 ~989 TFLOP/s)"
  if [ "$DEVICE" = cuda ]; then DTYPES="bfloat16 float16"; else DTYPES="float32"; fi
  for dt in $DTYPES; do
    step "clip-$CLIP_MODEL-$dt" "$BIN/bench/bench_clip" --models "$CLIP_MODEL" --device "$DEVICE" --dtype "$dt" \
      --batches "$CLIP_BATCHES" --iters 5
  done
fi

# --- the whole extraction pipeline (JPEG decode + preprocess + model + writes) -
if wanted extract; then
  note "## Extraction pipeline (bench_extract, generated 500x375 JPEGs)"
  if [ "$DEVICE" = cuda ]; then XB=256 XD=bfloat16; else XB=8 XD=float32; fi
  step "extract-$CLIP_MODEL-$XD" "$BIN/bench/bench_extract" --model "$CLIP_MODEL" --device "$DEVICE" --dtype "$XD" \
    --batch "$XB" --images "$IMAGES"
fi

# --- the synthetic Table 1 sweep ----------------------------------------------
if wanted sweep; then
  note "## Synthetic Table 1 sweep (configs/sweeps/table1_synthetic.yaml)"
  # The cells read the base config's runs/sweeps/synthetic.h5 (written by the sweep if absent).
  sed -e "s|^out: .*|out: $WORK/table1|" \
    configs/sweeps/table1_synthetic.yaml >"$WORK/table1.yaml"
  SWEEP_SET=()
  [ "$QUICK" = 1 ] && SWEEP_SET=(--set train.max_steps_per_epoch=2 --set train.epochs=1)
  if [ "$DEVICE" = cuda ]; then DEVICES=(-j 4 --devices cuda:0,cuda:0,cuda:0,cuda:0); else DEVICES=(-j 1 --devices cpu); fi
  STEP_S=$((STEP_S * 2)) step sweep-table1 "$BIN/semcodec" sweep "$WORK/table1.yaml" -q "${DEVICES[@]}" "${SWEEP_SET[@]}"
  [ -f "$WORK/table1/results.csv" ] && { echo '```'; cat "$WORK/table1/results.csv"; echo '```'; } >>"$REPORT"
fi

note ""
if [ ${#FAILED[@]} -eq 0 ]; then note "All steps passed."; else note "Failed steps: ${FAILED[*]}"; fi
echo "gpu_check.sh: report in $REPORT" >&2
[ ${#FAILED[@]} -eq 0 ]
