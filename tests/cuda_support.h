// The CUDA tests ("CUDA: ..." test cases, tag [cuda]) run only where LibTorch
// sees a GPU; elsewhere (CI, CPU builds) they return and CTest reports them
// skipped (test_support.h). Run them alone
// on a GPU machine with `ctest -R CUDA` (scripts/gpu_check.sh does).
#pragma once
#include <ATen/Context.h>

#include <catch2/catch.hpp>

#include "test_support.h"

namespace semcodec::test {

inline bool cuda_present() {
  if (at::hasCUDA()) return true;
  WARN("skipped: no CUDA device (this test runs on GPU machines)");
  report_skipped("no CUDA device");
  return false;
}

inline int cuda_device_count() { return at::hasCUDA() ? static_cast<int>(at::getNumGPUs()) : 0; }

}  // namespace semcodec::test
