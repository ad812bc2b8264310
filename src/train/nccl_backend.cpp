// Empty unless CMake's check found c10d's NCCL backend (a LibTorch built
// with CUDA, and nccl.h): see CMakeLists.txt.
#ifdef SEMCODEC_HAVE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <cstdlib>

#include "train/c10d_backend.h"

namespace semcodec {

c10::intrusive_ptr<C10dBackend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                  std::chrono::milliseconds timeout, int device_index) {
  // NCCL's wait() normally only orders the CUDA streams, and a collective
  // whose peer died spins on the GPU until the watchdog kills the process.
  // Blocking waits make Work::wait() return to the host and throw once the
  // timeout passes, so the trainer reports the failure like Gloo's. Users'
  // own settings win (LibTorch 2.x reads TORCH_NCCL_*, 1.x NCCL_*).
  setenv("TORCH_NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
  setenv("NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
  // The communicator is created on the current device at the first collective.
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_index));
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
}

}  // namespace semcodec
#endif  // SEMCODEC_HAVE_C10D_NCCL
