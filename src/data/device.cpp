#include "data/device.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <thread>

#include "util/error.h"

namespace semcodec {

c10::Device resolve_device(const std::string& spec) {
  if (spec == "auto") return at::hasCUDA() ? c10::Device("cuda:0") : c10::Device("cpu");
  if (spec == "cpu") return c10::Device("cpu");
  if (spec.rfind("cuda", 0) == 0) {
    require(at::hasCUDA(), "device '{}' requested but this build or machine has no CUDA", spec);
    c10::Device d(spec);
    return d;
  }
  fail("unknown device '{}' (expected auto, cpu, cuda or cuda:N)", spec);
}

void configure_threads(int64_t threads) {
  int n = threads > 0 ? static_cast<int>(threads) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
}

}  // namespace semcodec
