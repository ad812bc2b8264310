#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "train/distributed_launch.h"
#include "util/error.h"

namespace semcodec::cli {

void add_launch(CLI::App& app) {
  auto o = std::make_shared<LaunchOptions>();
  auto* cmd = app.add_subcommand(
      "launch",
      "start N local ranks of a command with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, "
      "MASTER_PORT); stops every rank when one fails (docs/distributed.md)");
  cmd->add_option("-n,--nproc", o->nproc, "ranks to start on this machine")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  cmd->add_option("--master-addr", o->master_addr, "rendezvous address")->capture_default_str();
  cmd->add_option("--master-port", o->master_port, "rendezvous port (0 = a free one)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{65535}));
  cmd->add_option("--kill-grace", o->kill_grace_seconds,
                  "seconds the other ranks get after SIGTERM before SIGKILL when one rank fails")
      ->capture_default_str();
  cmd->add_option("command", o->command, "the command every rank runs (after --)")->required();
  cmd->callback([o] {
    LaunchResult r = launch_local_ranks(*o);
    if (r.exit_code != 0) fail("launch: {}", r.message);
  });
}

}  // namespace semcodec::cli
