// c10d's collectives as both LibTorch generations spell them: the process
// groups (Gloo, NCCL) derive from c10d::ProcessGroup in 1.x and from
// c10d::Backend in 2.x, with the same allreduce / broadcast / barrier calls.
// Private to src/train (data_parallel.cpp, nccl_backend.cpp): it pulls in the
// c10d headers, which only these files, built without the shared precompiled
// header, may see.
#pragma once
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/version.h>

#include <chrono>

#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

namespace semcodec {

#if TORCH_VERSION_MAJOR >= 2
using C10dBackend = c10d::Backend;
#else
using C10dBackend = c10d::ProcessGroup;
#endif

// An NCCL process group for CUDA device `device_index` (nccl_backend.cpp;
// only in builds where CMake found c10d's NCCL backend). Collectives wait on
// the host with `timeout`, so a dead peer is an exception, not a hang.
c10::intrusive_ptr<C10dBackend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                  std::chrono::milliseconds timeout, int device_index);

}  // namespace semcodec
