#include "data/device.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <dlfcn.h>
#include <malloc.h>
#include <strings.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "util/error.h"

namespace {
// OpenBLAS entry points, when the BLAS that LibTorch loaded is OpenBLAS. Looked
// up at run time: the executable does not link the BLAS itself (LibTorch does),
// so a weak declaration would be bound to null at link time.
template <class F> F* blas_symbol(const char* name) {
  return reinterpret_cast<F*>(dlsym(RTLD_DEFAULT, name));
}
}  // namespace

namespace semcodec {

c10::Device resolve_device(const std::string& spec) {
  if (spec == "auto") return at::hasCUDA() ? c10::Device("cuda:0") : c10::Device("cpu");
  if (spec == "cpu") return c10::Device("cpu");
  if (spec.rfind("cuda", 0) == 0) {
    require(at::hasCUDA(), "device '{}' requested but this build or machine has no CUDA", spec);
    const c10::Device d(spec);
    const int64_t gpus = static_cast<int64_t>(at::getNumGPUs());
    require(!d.has_index() || d.index() < gpus, "device '{}' requested but this machine has {} GPU{} (cuda:0..cuda:{})",
            spec, gpus, gpus == 1 ? "" : "s", gpus - 1);
    return d;
  }
  fail("unknown device '{}' (expected auto, cpu, cuda or cuda:N)", spec);
}

bool cpu_has_native_bfloat16() {
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  const bool amx_bf16 = (d >> 22) & 1u;
  __cpuid_count(7, 1, a, b, c, d);
  const bool avx512_bf16 = (a >> 5) & 1u;
  return amx_bf16 || avx512_bf16;
#else
  return false;
#endif
}

c10::Device resolve_device(const std::string& spec, int64_t local_rank) {
  const c10::Device d = resolve_device(spec);
  if (!d.is_cuda() || (spec != "auto" && spec != "cuda") || local_rank <= 0) return d;
  const int64_t gpus = static_cast<int64_t>(at::getNumGPUs());
  return c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(local_rank % std::max<int64_t>(gpus, 1)));
}

void configure_threads(int64_t threads, GemmBackend gemm) {
  const int n = threads > 0 ? static_cast<int>(threads) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // PQVAE-shared's time goes into GEMMs; the element-wise ops between them are
  // small. OpenBLAS's pthread pool and LibTorch's OpenMP pool both busy-wait,
  // so giving both n threads oversubscribes the cores: measured on 2 cores,
  // BLAS 2 + OpenMP 1 trains 1.5x faster than 2 + 2 (bench/bench_pqvae.cpp).
  // bfloat16 GEMMs run in oneDNN on the OpenMP pool: then OpenMP gets the
  // cores and OpenBLAS one thread (its idle workers would only yield-spin).
  const bool blas = gemm == GemmBackend::Blas;
  if (auto* set = blas_symbol<void(int)>("openblas_set_num_threads")) set(blas ? n : 1);
  at::set_num_threads(blas ? (n > 4 ? n / 2 : 1) : n);
  // Every step allocates the same few large temporaries; without this glibc
  // maps and unmaps them each time and the page faults dominate system time.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

void prefer_avx512_blas(char** argv) {
#if defined(__x86_64__) && defined(__linux__)
  // OpenBLAS picks its kernels when the library loads, from OPENBLAS_CORETYPE
  // or CPUID. Debian's 0.3.21 does not know Sapphire Rapids and falls back to
  // its AVX2 (Haswell) kernels, which run PQVAE-shared's GEMMs ~1.5x slower
  // than the AVX-512 (SkylakeX) ones on the same core (bench/bench_pqvae.cpp).
  // The choice cannot be changed after loading, so the process restarts itself
  // once with the variable set. An explicit OPENBLAS_CORETYPE always wins.
  auto* corename = blas_symbol<char*()>("openblas_get_corename");
  if (!corename || std::getenv("OPENBLAS_CORETYPE") || std::getenv("SEMCODEC_BLAS_RESTARTED")) return;
  const char* core = corename();
  if (!core || strcasecmp(core, "haswell") != 0 || !__builtin_cpu_supports("avx512f") ||
      !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq"))
    return;
  setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  setenv("SEMCODEC_BLAS_RESTARTED", "1", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: carry on with the AVX2 kernels
#else
  (void)argv;
#endif
}


GemmBackend gemm_backend_for(c10::ScalarType dtype, const c10::Device& device) {
  return dtype == c10::ScalarType::BFloat16 && device.is_cpu() ? GemmBackend::OneDnn : GemmBackend::Blas;
}

}  // namespace semcodec
