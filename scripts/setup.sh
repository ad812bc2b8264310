#!/usr/bin/env bash
# Sets up semcodec on a Debian/Ubuntu machine: installs the Debian packages the
# build needs (only those missing), configures CMake in build/ and builds the
# tool, the tests and the benchmarks. Safe to run again: installed packages are
# skipped, an existing build directory is reused and only rebuilt incrementally.
#
#   bash scripts/setup.sh              # dependencies + configure + build
#   bash scripts/setup.sh --no-build   # dependencies + configure, no compile
#   bash scripts/setup.sh --deps-only  # dependencies only
#   bash scripts/setup.sh -- -DCMAKE_PREFIX_PATH=/opt/libtorch   # extra args for cmake's configure
#
# Environment: SEMCODEC_BUILD_DIR (default build), SEMCODEC_JOBS (default nproc),
# SEMCODEC_NO_APT=1 (never call apt-get; just check and warn).
# Package list and tested versions: third_party/MANIFEST.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DO_DEPS=1 DO_CONFIGURE=1 DO_BUILD=1
CMAKE_EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) DO_BUILD=0 ;;
    --deps-only) DO_CONFIGURE=0 DO_BUILD=0 ;;
    --) shift; CMAKE_EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

BUILD_DIR="${SEMCODEC_BUILD_DIR:-build}"
JOBS="${SEMCODEC_JOBS:-$(nproc 2>/dev/null || echo 2)}"

log() { echo "setup.sh: $*"; }
warn() { echo "setup.sh: warning: $*" >&2; }
die() { echo "setup.sh: error: $*" >&2; exit 1; }

# Required: the build fails without them. libopenblas0-pthread is not a build
# dependency but Debian's LibTorch does its matrix products through the system
# BLAS; with the reference BLAS they are ~25x slower.
REQUIRED=(build-essential cmake ninja-build pkg-config libtorch-dev libopenblas0-pthread
          libyaml-cpp-dev libhdf5-dev libfmt-dev catch2 libcli11-dev nlohmann-json3-dev zlib1g-dev
          libjpeg-dev libpng-dev)
# libjpeg-dev pulls in libjpeg-turbo's libjpeg API (Debian: libjpeg62-turbo-dev, Ubuntu:
# libjpeg-turbo8-dev); image decoding (src/data/image_decode.cpp) needs it and libpng.
# Optional (plots, FAISS baselines, multi-process training, the Python module and its tests:
# docs/python.md, fuzzing with clang + libFuzzer in scripts/fuzz.sh and
# scripts/h5_campaign.sh): skipped with a warning when the distribution lacks them. "a|b"
# installs the first of the alternatives that exists.
OPTIONAL=(libturbojpeg0-dev gnuplot-nox libfaiss-dev libgloo-dev
          python3-dev python3-numpy pybind11-dev python3-pybind11 python3-pytest
          clang "libclang-rt-dev|libclang-rt-14-dev")

is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}
# True when apt knows an installable version of the package.
is_available() {
  local cand
  cand="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')"
  [ -n "$cand" ] && [ "$cand" != "(none)" ]
}

SUDO=()
setup_privileges() {
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    if [ -t 0 ]; then SUDO=(sudo); else SUDO=(sudo -n); fi
  else
    die "packages must be installed but this is not root and sudo is not available; install as root: apt-get install -y $*"
  fi
}

APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
}
apt_install() {
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

install_deps() {
  command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian and Ubuntu only (see third_party/MANIFEST.md for the package list)"
  local missing_req=() missing_opt=() p alt found
  for p in "${REQUIRED[@]}"; do is_installed "$p" || missing_req+=("$p"); done
  for p in "${OPTIONAL[@]}"; do
    found=0
    for alt in ${p//|/ }; do if is_installed "$alt"; then found=1; break; fi; done
    [ "$found" -eq 1 ] || missing_opt+=("$p")
  done
  if [ ${#missing_req[@]} -eq 0 ] && [ ${#missing_opt[@]} -eq 0 ]; then
    log "all Debian packages are installed"
    return 0
  fi
  log "missing packages: ${missing_req[*]:-} ${missing_opt[*]:-}"
  if [ "${SEMCODEC_NO_APT:-0}" = "1" ]; then
    [ ${#missing_req[@]} -eq 0 ] || warn "SEMCODEC_NO_APT=1: not installing required packages ${missing_req[*]}; the build may fail"
    [ ${#missing_opt[@]} -eq 0 ] || warn "SEMCODEC_NO_APT=1: not installing optional packages ${missing_opt[*]}"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing_req[*]:-} ${missing_opt[*]:-}"
  setup_privileges "${missing_req[@]}" "${missing_opt[@]}"
  apt_update_once

  local to_install=() unavailable=()
  for p in "${missing_req[@]}"; do
    if is_available "$p"; then to_install+=("$p"); else unavailable+=("$p"); fi
  done
  if [ ${#unavailable[@]} -gt 0 ]; then
    local fatal=()
    for p in "${unavailable[@]}"; do
      if [ "$p" = "libtorch-dev" ] && [ -n "${CMAKE_PREFIX_PATH:-}${Torch_DIR:-}" ]; then
        warn "libtorch-dev is not available here; using the LibTorch found through CMAKE_PREFIX_PATH/Torch_DIR"
      elif [ "$p" = "libtorch-dev" ]; then
        fatal+=("$p")
        warn "libtorch-dev is not in this distribution's registry: install the official LibTorch 2.x and pass its path, e.g. CMAKE_PREFIX_PATH=/opt/libtorch bash scripts/setup.sh (third_party/MANIFEST.md)"
      else
        fatal+=("$p")
      fi
    done
    [ ${#fatal[@]} -eq 0 ] || die "required packages not available from apt: ${fatal[*]}"
  fi
  if [ ${#to_install[@]} -gt 0 ]; then
    log "installing required: ${to_install[*]}"
    apt_install "${to_install[@]}"
  fi

  for p in "${missing_opt[@]}"; do
    found=""
    for alt in ${p//|/ }; do if is_available "$alt"; then found="$alt"; break; fi; done
    if [ -z "$found" ]; then
      warn "optional package ${p//|/ or } is not available on this distribution; skipped"
      continue
    fi
    log "installing optional: $found"
    apt_install "$found" || warn "could not install optional package $found; skipped"
  done
}

# Debian's LibTorch calls the system BLAS (libblas.so.3); make sure the
# alternative points at OpenBLAS and not the slow reference implementation.
check_blas() {
  command -v update-alternatives >/dev/null 2>&1 || return 0
  local arch link value
  arch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)"
  link="libblas.so.3-$arch"
  value="$(update-alternatives --query "$link" 2>/dev/null | awk '/^Value:/ {print $2; exit}')"
  if [ -n "$value" ] && [[ "$value" != *openblas* ]]; then
    warn "libblas.so.3 points to $value, not OpenBLAS: matrix products will be ~25x slower."
    warn "fix: ${SUDO[*]:-}update-alternatives --set $link \$(update-alternatives --list $link | grep openblas | head -1)"
  fi
}

if [ "$DO_DEPS" -eq 1 ]; then
  install_deps
  check_blas
fi

if [ "$DO_CONFIGURE" -eq 1 ]; then
  command -v cmake >/dev/null 2>&1 || die "cmake not found"
  if [ -f "$BUILD_DIR/CMakeCache.txt" ]; then
    # Reuse: keep the generator and options it was created with.
    log "configuring existing $BUILD_DIR/"
    cmake -S . -B "$BUILD_DIR" "${CMAKE_EXTRA[@]}"
  else
    GEN=()
    if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); else warn "ninja not found; using CMake's default generator"; fi
    log "configuring $BUILD_DIR/ (Release)"
    cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "${CMAKE_EXTRA[@]}"
  fi
fi

if [ "$DO_BUILD" -eq 1 ]; then
  log "building with $JOBS jobs (the first build takes a while: LibTorch headers are heavy)"
  cmake --build "$BUILD_DIR" -j"$JOBS"
  case "$BUILD_DIR" in /*) BIN="$BUILD_DIR/semcodec" ;; *) BIN="$ROOT/$BUILD_DIR/semcodec" ;; esac
  log "done: the binary is $BIN"
  log "try:  $BUILD_DIR/semcodec quickstart     (or $BUILD_DIR/semcodec --help)"
elif [ "$DO_CONFIGURE" -eq 1 ]; then
  log "configured; build with: cmake --build $BUILD_DIR -j$JOBS   (binary: $BUILD_DIR/semcodec)"
else
  log "dependencies done; build with: bash scripts/setup.sh"
fi
