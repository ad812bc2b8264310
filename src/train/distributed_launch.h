// `semcodec launch --nproc N -- CMD ...`: N local ranks of CMD with the
// variables torchrun would set (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), for users without torchrun.
// When one rank fails the others are stopped (SIGTERM, then SIGKILL after a
// grace period) so a job never hangs on a dead peer; SIGINT / SIGTERM sent to
// the launcher are passed on to every rank.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace semcodec {

struct LaunchOptions {
  int64_t nproc = 2;
  std::vector<std::string> command;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 0;       // 0: a free port on this machine
  double kill_grace_seconds = 10;
};

struct LaunchResult {
  int exit_code = 0;       // 0, or the first failing rank's code
  int64_t failed_rank = -1;
  std::string message;     // what happened, for the user
};

LaunchResult launch_local_ranks(const LaunchOptions& options);

// A TCP port that is free on this machine now (bind to port 0 and read it back).
int64_t free_tcp_port();

}  // namespace semcodec
