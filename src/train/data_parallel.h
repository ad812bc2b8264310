// Data-parallel training on LibTorch's c10d (docs/distributed.md): a process
// group from the launch environment (distributed_env.h; TCPStore rendezvous,
// Gloo on CPU), and the three collectives the trainer needs: broadcast from
// rank 0 (identical initial parameters and codebook states), summed
// all-reduce of gradients in flattened buckets, and all-reduce of metrics.
// Every collective has the configured timeout, so a dead peer is an error,
// never a hang.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

#include "train/distributed_env.h"

namespace semcodec {

class DataParallel {
 public:
  // nullptr when the environment describes a single process.
  static std::unique_ptr<DataParallel> from_env(const DistEnv& env, double timeout_seconds);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int64_t rank() const { return env_.rank; }
  int64_t world_size() const { return env_.world_size; }
  bool is_main() const { return env_.rank == 0; }

  // Rank 0's values into every rank's tensors (in place).
  void broadcast(const std::vector<at::Tensor>& tensors);
  // Element-wise sum over ranks, in place; float32 tensors travel in
  // flattened buckets of up to `bucket_bytes`; undefined tensors are skipped.
  void allreduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes = 25 << 20);
  void barrier();

 private:
  struct Group;
  DataParallel(const DistEnv& env, std::unique_ptr<Group> group);
  DistEnv env_;
  std::unique_ptr<Group> group_;
};

}  // namespace semcodec
