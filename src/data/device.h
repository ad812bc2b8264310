// Where tensors live and how many CPU threads compute on them.
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

namespace semcodec {

// "auto" picks CUDA when available, else CPU; "cuda:N" checks N exists.
c10::Device resolve_device(const std::string& spec);
// The same for one of several local processes (ranks): "auto" and "cuda"
// without an index mean GPU local_rank (modulo the GPUs present), so the ranks
// of a node spread over its GPUs; cpu and cuda:N are taken as given.
c10::Device resolve_device(const std::string& spec, int64_t local_rank);
// Whether the CPU multiplies bfloat16 natively (AMX-BF16 or AVX512-BF16),
// which is where LibTorch's oneDNN bfloat16 GEMMs beat float32 ones.
bool cpu_has_native_bfloat16();

// Which library runs the big matrix products: OpenBLAS (float32 on the CPU)
// or oneDNN, which parallelizes over LibTorch's OpenMP pool (bfloat16).
enum class GemmBackend { Blas, OneDnn };
// 0 = every core. OpenMP in some builds starts with one thread: always set it.
void configure_threads(int64_t threads, GemmBackend gemm = GemmBackend::Blas);
// The backend of products computed in `dtype` on `device`: oneDNN for
// bfloat16 on the CPU (it then gets the cores), OpenBLAS otherwise.
GemmBackend gemm_backend_for(c10::ScalarType dtype, const c10::Device& device);
// Call first thing in main(): when OpenBLAS chose its AVX2 kernels on a CPU with
// AVX-512 (it does not recognise recent Xeons), re-executes the program once
// with OPENBLAS_CORETYPE=SkylakeX. No-op otherwise or when the variable is set.
void prefer_avx512_blas(char** argv);

}  // namespace semcodec
