#!/usr/bin/env bash
# Builds semcodec with its tests (scripts/setup.sh: missing Debian packages,
# configure, build) and runs the whole test suite with CTest.
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -R test_codec   # extra arguments go to ctest
# Environment: SEMCODEC_BUILD_DIR (default build), SEMCODEC_TEST_JOBS (default 2).
# The exit status is ctest's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${SEMCODEC_BUILD_DIR:-build}"
JOBS="${SEMCODEC_TEST_JOBS:-2}"

bash "$ROOT/scripts/setup.sh"

echo "test.sh: running ctest in $BUILD_DIR/"
# ctest --test-dir needs CMake >= 3.20; older ones run from inside the build dir.
ctest_version="$(ctest --version | awk 'NR==1 {print $3}')"
set +e
if printf '3.20\n%s\n' "$ctest_version" | sort -V -C; then
  ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" "$@"
else
  (cd "$BUILD_DIR" && ctest --output-on-failure -j"$JOBS" "$@")
fi
rc=$?
set -e
if [ "$rc" -eq 0 ]; then echo "test.sh: all tests passed"; else echo "test.sh: ctest failed (exit $rc)" >&2; fi
exit "$rc"
