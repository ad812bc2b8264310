#include "train/distributed_launch.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

#include "util/error.h"
#include "util/subprocess.h"

namespace semcodec {

namespace {
// Blocks SIGINT / SIGTERM in the launcher (they are collected with
// sigtimedwait and passed on) and restores the mask when done.
class BlockedSignals {
 public:
  BlockedSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigprocmask(SIG_BLOCK, &set_, &old_);
  }
  ~BlockedSignals() { sigprocmask(SIG_SETMASK, &old_, nullptr); }
  // A pending SIGINT / SIGTERM within `ms` milliseconds, or 0.
  int wait(long ms) const {
    timespec t{ms / 1000, (ms % 1000) * 1000000};
    const int sig = sigtimedwait(&set_, nullptr, &t);
    return sig > 0 ? sig : 0;
  }

 private:
  sigset_t set_{}, old_{};
};
}  // namespace

int64_t free_tcp_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  require(fd >= 0, "launch: cannot open a socket: {}", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  const int err = errno;
  close(fd);
  require(ok, "launch: cannot find a free port: {}", std::strerror(err));
  return ntohs(a.sin_port);
}

LaunchResult launch_local_ranks(const LaunchOptions& o) {
  require(o.nproc >= 1 && o.nproc <= 4096, "launch: --nproc must be in [1, 4096], got {}", o.nproc);
  require(!o.command.empty(), "launch: no command to run (semcodec launch --nproc N -- COMMAND ...)");
  const int64_t port = o.master_port > 0 ? o.master_port : free_tcp_port();
  BlockedSignals signals;
  std::map<pid_t, int64_t> ranks;  // running pid -> rank
  for (int64_t r = 0; r < o.nproc; ++r) {
    std::vector<std::string> env = {fmt::format("RANK={}", r),           fmt::format("WORLD_SIZE={}", o.nproc),
                                    fmt::format("LOCAL_RANK={}", r),     fmt::format("LOCAL_WORLD_SIZE={}", o.nproc),
                                    "MASTER_ADDR=" + o.master_addr,      fmt::format("MASTER_PORT={}", port)};
    try {
      ranks[spawn_process(o.command, "", env)] = r;
    } catch (const Error&) {
      for (const auto& [pid, rank] : ranks) kill(pid, SIGKILL);
      for (const auto& [pid, rank] : ranks) waitpid(pid, nullptr, 0);
      throw;
    }
  }
  LaunchResult res;
  bool stopping = false;
  std::chrono::steady_clock::time_point stop_at{};
  auto stop_others = [&](int sig) {
    for (const auto& [pid, rank] : ranks) kill(pid, sig);
  };
  while (!ranks.empty()) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      auto it = ranks.find(pid);
      if (it == ranks.end()) continue;
      const int64_t rank = it->second;
      ranks.erase(it);
      const int code = exit_code_from_status(status);
      if (code != 0 && res.failed_rank < 0) {
        res.failed_rank = rank;
        res.exit_code = code;
        if (!ranks.empty()) {
          stopping = true;
          stop_at = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(o.kill_grace_seconds * 1000));
          stop_others(SIGTERM);
        }
      }
      continue;
    }
    if (pid < 0 && errno != EINTR && errno != ECHILD) fail("launch: waitpid: {}", std::strerror(errno));
    if (const int sig = signals.wait(100)) stop_others(sig);  // Ctrl-C reaches every rank
    if (stopping && std::chrono::steady_clock::now() > stop_at) {
      stop_others(SIGKILL);
      stopping = false;
    }
  }
  if (res.failed_rank >= 0)
    res.message = fmt::format("rank {} of {} exited with code {}{}", res.failed_rank, o.nproc, res.exit_code,
                              o.nproc > 1 ? "; the other ranks were stopped" : "");
  else
    res.message = fmt::format("all {} ranks finished", o.nproc);
  return res;
}

}  // namespace semcodec
