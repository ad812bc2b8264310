#!/usr/bin/env bash
# Installs semcodec from a build dir into a scratch prefix, then configures,
# builds and runs cmake/consumer_example against it (find_package(semcodec)).
#   scripts/check_install.sh [BUILD_DIR=build] [WORKDIR=/tmp/semcodec-install-check]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
WORK="${2:-/tmp/semcodec-install-check}"
rm -rf "$WORK"
cmake --build "$BUILD" --target semcodec_cli
cmake --install "$BUILD" --prefix "$WORK/prefix"
cmake -S "$ROOT/cmake/consumer_example" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$WORK/prefix"
cmake --build "$WORK/build"
# A compress-only program links neither the trainer nor c10d.
if ninja -C "$WORK/build" -t commands consumer | grep -q 'semcodec_train\|c10d'; then
  echo "check_install.sh: the consumer links the trainer" >&2
  exit 1
fi
"$WORK/build/consumer"
echo "check_install.sh: find_package(semcodec) works from $WORK/prefix"
