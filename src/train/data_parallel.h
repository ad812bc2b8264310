// Data-parallel training on LibTorch's c10d (docs/distributed.md): a process
// group from the launch environment (distributed_env.h; TCPStore rendezvous,
// NCCL on CUDA where the build has it, else Gloo), and the three collectives
// the trainer needs: broadcast from
// rank 0 (identical initial parameters and codebook states), summed
// all-reduce of gradients in flattened buckets, and all-reduce of metrics.
// Every collective has the configured timeout, so a dead peer is an error,
// never a hang.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <vector>

#include "util/distributed_env.h"

namespace semcodec {

struct DataParallelOptions {
  double timeout_seconds = 300;
  // auto: NCCL when `device` is CUDA and this build has c10d NCCL, else Gloo.
  std::string backend = "auto";  // auto | gloo | nccl
  c10::Device device = c10::Device(c10::kCPU);  // this rank's training device
};

// True when this build has c10d's Gloo / NCCL backend.
bool have_gloo_backend();
bool have_nccl_backend();

class DataParallel {
 public:
  // nullptr when the environment describes a single process.
  static std::unique_ptr<DataParallel> from_env(const DistEnv& env, const DataParallelOptions& options);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int64_t rank() const { return env_.rank; }
  int64_t world_size() const { return env_.world_size; }
  bool is_main() const { return env_.rank == 0; }
  const std::string& backend() const { return backend_; }  // "gloo" or "nccl"
  // Where collectives' buffers live: the rank's GPU with NCCL, the host with
  // Gloo (device tensors then travel through host copies).
  c10::Device buffer_device() const;

  // Rank 0's values into every rank's tensors (in place).
  void broadcast(const std::vector<at::Tensor>& tensors);
  // Element-wise sum over ranks, in place; float32 tensors travel in
  // flattened buckets of up to `bucket_bytes`; undefined tensors are skipped.
  void allreduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes = 25 << 20);
  void barrier();

 private:
  friend class GradientReducer;
  struct Group;
  DataParallel(const DistEnv& env, std::string backend, std::unique_ptr<Group> group);
  DistEnv env_;
  std::string backend_;
  std::unique_ptr<Group> group_;
};

// Sums the parameters' gradients over ranks while backward runs: a hook on
// each parameter copies its gradient into a flat bucket as autograd produces
// it, and a bucket's all-reduce starts (asynchronously, on the process
// group's threads) as soon as its last gradient is in. Buckets hold the
// parameters in reverse order, the order backward produces them. Every rank
// runs the same graph, so buckets fill, and their collectives start, in the
// same order everywhere. Parameters without a gradient this step (the
// codebook during the quantizer warm-up) are sent as zeros and keep no .grad.
// Buckets live on the process group's buffer device.
class GradientReducer {
 public:
  GradientReducer(DataParallel& dp, std::vector<at::Tensor> params, int64_t bucket_bytes = 25 << 20);
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // After backward(): starts the buckets still waiting, waits for all, and
  // writes the sums into the parameters' .grad.
  void finish();
  // How many buckets started before finish() in the last step (overlapped with backward).
  int64_t overlapped_buckets() const;
  int64_t buckets() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace semcodec
