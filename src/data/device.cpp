#include "data/device.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <malloc.h>

#include <thread>

#include "util/error.h"

// Present when the BLAS behind LibTorch is OpenBLAS; weak so other BLAS builds link.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace semcodec {

c10::Device resolve_device(const std::string& spec) {
  if (spec == "auto") return at::hasCUDA() ? c10::Device("cuda:0") : c10::Device("cpu");
  if (spec == "cpu") return c10::Device("cpu");
  if (spec.rfind("cuda", 0) == 0) {
    require(at::hasCUDA(), "device '{}' requested but this build or machine has no CUDA", spec);
    return c10::Device(spec);
  }
  fail("unknown device '{}' (expected auto, cpu, cuda or cuda:N)", spec);
}

void configure_threads(int64_t threads) {
  const int n = threads > 0 ? static_cast<int>(threads) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // PQVAE-shared's time goes into GEMMs; the element-wise ops between them are
  // small. OpenBLAS's pthread pool and LibTorch's OpenMP pool both busy-wait,
  // so giving both n threads oversubscribes the cores: measured on 2 cores,
  // BLAS 2 + OpenMP 1 trains 1.5x faster than 2 + 2 (bench/bench_pqvae.cpp).
  if (openblas_set_num_threads) openblas_set_num_threads(n);
  at::set_num_threads(n > 4 ? n / 2 : 1);
  // Every step allocates the same few large temporaries; without this glibc
  // maps and unmaps them each time and the page faults dominate system time.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

}  // namespace semcodec
