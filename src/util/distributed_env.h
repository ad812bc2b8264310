// Where this process stands in a multi-process job, read from the variables
// that torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT),
// SLURM's srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_JOB_NODELIST)
// and `semcodec launch` set (docs/distributed.md). The process group itself
// (TCPStore rendezvous, Gloo / NCCL) is built from this.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace semcodec {

struct DistEnv {
  int64_t rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  std::string launcher = "none";  // none | torchrun | slurm
  bool distributed() const { return world_size > 1; }
};

// Reads the job from `getenv` (torchrun's variables win over SLURM's); any
// malformed or inconsistent value is an error naming the variable.
DistEnv dist_env_from(const std::function<const char*(const char*)>& getenv);
// The same from this process's environment.
DistEnv dist_env();

// SLURM's compact host lists: "node[01-03,07],gpu5" -> node01 node02 node03 node07 gpu5.
std::vector<std::string> expand_slurm_nodelist(const std::string& list);

}  // namespace semcodec
