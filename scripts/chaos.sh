#!/usr/bin/env bash
# Crash consistency, shown: runs `train`, `extract` and `sweep` once
# uninterrupted, then again while killing them with SIGKILL at random moments
# (N kills per job), resuming after each kill, and checks that what the
# interrupted runs end with equals the uninterrupted run's, bit for bit:
# checkpoints (every tensor, config, state), metrics logs (every record but
# wall-clock fields), feature files (rows, ids, labels, classes), sweep cell
# results and the sweep's report. A run that finishes before its kill counts
# as a round: it is compared too, then restarted from nothing until N kills
# have landed. The test suite runs a short version (ctest -R chaos).
#
#   scripts/chaos.sh [--kills N] [--jobs "train extract sweep"] [--build DIR]
#                    [--work DIR] [--seed S] [--keep]
#
# N defaults to 20 per job; DIR (default build) holds semcodec and
# tests/chaos_compare; the work folder defaults to a temporary one, removed
# unless --keep. Exit status 1 when any comparison fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KILLS=20
JOBS="train extract sweep"
BUILD="$ROOT/build"
WORK=""
SEED=20261206
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) KILLS="$2"; shift ;;
    --jobs) JOBS="$2"; shift ;;
    --build) BUILD="$2"; shift ;;
    --work) WORK="$2"; shift ;;
    --seed) SEED="$2"; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "chaos.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
B="$BUILD/semcodec"
CMP="$BUILD/tests/chaos_compare"
for f in "$B" "$CMP"; do
  [ -x "$f" ] || { echo "chaos.sh: $f not found (build the project first, or give --build DIR)" >&2; exit 2; }
done
if [ -z "$WORK" ]; then
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/semcodec-chaos.XXXXXX")"
  [ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
RANDOM=$SEED
FAILED=0

# ---------------------------------------------------------------- the jobs
# Small enough that one uninterrupted run takes seconds, long enough that most
# kills land mid-work: several epochs, many extraction batches, several cells.
"$B" synth -o "$WORK/s.h5" --classes 30 --per-class 40 --dim 64 --seed 5 >/dev/null
NET='model: {embed_dim: 64, hidden_channels: 32, body_channels: 16, residual_channels: 8, latent_channels: 8,
  d_sub: 4, codebook_size: 4, init_samples: 400, quantizer_warmup_steps: 5}'
cat >"$WORK/train.yaml" <<EOF
data: {split: {heldout_classes: 6}}
$NET
train: {epochs: 8, batch_size: 16, threads: 1, seed: 3, device: cpu}
EOF
mkdir -p "$WORK/configs/sweeps"
cat >"$WORK/configs/base.yaml" <<EOF
data: {features: $WORK/s.h5, split: {heldout_classes: 6}}
$NET
train: {epochs: 3, batch_size: 16, threads: 1, seed: 3, device: cpu}
EOF
# shellcheck disable=SC2016
write_sweep() {  # out folder
  cat >"$WORK/configs/sweeps/chaos.yaml" <<EOF
name: chaos
base: $WORK/configs/base.yaml
out: $1
datasets: [{name: synthetic}]
methods:
  - label: PQVAE-shared
    vary: {model.codebook_size: [4, 8]}
  - label: Learned SQ
    set: [model.method=learned_sq]
    vary: {model.sq_bits: [1, 2]}
  - label: Adaptive KLT
    set: [model.method=adaptive_klt]
    vary: {model.klt_target_bits: [64, 128]}
EOF
}
ZOO="$WORK/zoo"
IMAGES="$ROOT/tests/fixtures/clip-tiny/images"
for c in ant bee cat; do
  mkdir -p "$ZOO/$c"
  for i in $(seq -w 1 16); do
    cp "$IMAGES/clip.png" "$ZOO/$c/a$i.png"
    cp "$IMAGES/coco_val2014_831.jpg" "$ZOO/$c/b$i.jpg"
  done
done
MODEL="$ROOT/tests/fixtures/clip-tiny/model/tiny_state_dict.pt"

# run_job JOB OUT: the job's command, writing under OUT (train resumes when it
# finds a checkpoint, extract from its partial file, sweep skips finished cells
# and resumes a cell's training). With EXEC=exec the job replaces the calling
# subshell, so that its pid is the one killed.
EXEC=""
run_job() {
  local job="$1" out="$2"
  case "$job" in
    train)
      local resume=()
      [ -f "$out/last.safetensors" ] && resume=(--resume)
      $EXEC "$B" train -q -c "$WORK/train.yaml" --features "$WORK/s.h5" -o "$out" "${resume[@]}" ;;
    extract)
      $EXEC "$B" extract -q -m "$MODEL" --root "$ZOO" --batch 2 --decode-threads 1 --device cpu -o "$out/x.h5" ;;
    sweep)
      write_sweep "$out"
      $EXEC "$B" sweep "$WORK/configs/sweeps/chaos.yaml" -q ;;
  esac
}

# compare JOB REF OUT: what the two runs left.
compare() {
  local job="$1" ref="$2" out="$3" ok=0
  case "$job" in
    train)
      for f in last best; do "$CMP" checkpoint "$ref/$f.safetensors" "$out/$f.safetensors" || ok=1; done
      "$CMP" jsonl "$ref/metrics.jsonl" "$out/metrics.jsonl" || ok=1
      cmp -s "$ref/config.resolved.yaml" "$out/config.resolved.yaml" || { echo "config.resolved.yaml differs"; ok=1; } ;;
    extract)
      "$CMP" features "$ref/x.h5" "$out/x.h5" || ok=1 ;;
    sweep)
      for cell in "$ref"/cells/*/; do
        local key
        key="$(basename "$cell")"
        "$CMP" checkpoint "$cell/best.safetensors" "$out/cells/$key/best.safetensors" || ok=1
        [ -f "$cell/metrics.jsonl" ] && { "$CMP" jsonl "$cell/metrics.jsonl" "$out/cells/$key/metrics.jsonl" || ok=1; }
        for r in "$cell"/result-*.json; do "$CMP" json "$r" "$out/cells/$key/$(basename "$r")" || ok=1; done
      done
      "$B" report "$WORK/configs/sweeps/chaos.yaml" >/dev/null
      "$CMP" json "$ref/results.json" "$out/results.json" || ok=1 ;;
  esac
  # Nothing a killed writer left may remain: temporaries, partial files, locks held.
  if find "$out" \( -name '*.tmp-*' -o -name '*.partial' \) | grep -q .; then
    echo "leftover temporary files under $out:"; find "$out" \( -name '*.tmp-*' -o -name '*.partial' \); ok=1
  fi
  return $ok
}

for job in $JOBS; do
  # Both runs write to the same path (the reference is moved aside when done),
  # so that paths stored in configs, checkpoints and results agree.
  out="$WORK/$job-run" ref="$WORK/$job-ref"
  rm -rf "$ref" "$out"
  mkdir -p "$out"
  t0=$(date +%s%N)
  run_job "$job" "$out" >/dev/null
  if [ "$job" = sweep ]; then "$B" report "$WORK/configs/sweeps/chaos.yaml" >/dev/null; fi
  full_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  mv "$out" "$ref"
  mkdir -p "$out"
  kills=0 rounds=0 finished=0
  while :; do
    # A kill moment anywhere in an uninterrupted run's duration.
    delay_ms=$(( 20 + (RANDOM * 32768 + RANDOM) % (full_ms > 40 ? full_ms : 40) ))
    ( EXEC=exec; run_job "$job" "$out" ) >/dev/null 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    # SIGKILL the job from the top: a sweep's cells must die with it.
    [ "$kills" -lt "$KILLS" ] && { kill -KILL "$pid" 2>/dev/null || true; }
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    if [ "$rc" -eq 137 ]; then
      kills=$((kills + 1))
      continue
    fi
    if [ "$rc" -ne 0 ]; then
      echo "chaos.sh: $job: a resumed run failed (exit $rc); rerunning it to see why:" >&2
      run_job "$job" "$out" >&2 || true
      FAILED=1
      break
    fi
    rounds=$((rounds + 1))
    if ! compare "$job" "$ref" "$out"; then
      echo "chaos.sh: $job: round $rounds after $kills kills differs from the uninterrupted run" >&2
      FAILED=1
      break
    fi
    finished=1
    [ "$kills" -ge "$KILLS" ] && break
    rm -rf "$out" && mkdir -p "$out"  # a new round, from nothing
    finished=0
  done
  [ "$finished" = 1 ] && echo "chaos.sh: $job: $kills kills (SIGKILL), $rounds completed rounds, each equal to the uninterrupted run (${full_ms} ms)"
done
exit $FAILED
