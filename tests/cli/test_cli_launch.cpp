// `semcodec launch` starts N local ranks with torchrun's variables and stops
// the others when one fails.
#include <catch2/catch.hpp>

#include "cli_runner.h"
#include "test_support.h"
#include "util/atomic_file.h"

using namespace semcodec;
using semcodec::test::Run;
using semcodec::test::TempDir;

TEST_CASE("launch gives every rank its RANK, WORLD_SIZE, LOCAL_RANK and one master", "[cli][dist]") {
  TempDir d("cli-launch");
  Run r = test::run_cli("launch --nproc 3 -- sh -c 'echo $RANK $WORLD_SIZE $LOCAL_RANK $MASTER_ADDR $MASTER_PORT > " +
                        d.file("rank") + "$RANK'");
  INFO(r.output);
  REQUIRE(r.code == 0);
  std::string port;
  for (int rank = 0; rank < 3; ++rank) {
    const std::string line = read_file(d.file("rank" + std::to_string(rank)));
    const std::string expect = std::to_string(rank) + " 3 " + std::to_string(rank) + " 127.0.0.1 ";
    CHECK(line.rfind(expect, 0) == 0);
    const std::string p = line.substr(expect.size());
    if (rank == 0) port = p;
    CHECK(p == port);  // one rendezvous for all
  }
  CHECK(std::stoi(port) > 0);
}

TEST_CASE("a failing rank stops the others and launch exits non-zero naming it", "[cli][dist]") {
  TempDir d("cli-launch-fail");
  // Rank 1 fails at once; rank 0 would sleep 300 s: launch must stop it, not wait.
  Run r = test::run_cli("launch --nproc 2 --kill-grace 2 -- sh -c 'if [ $RANK = 1 ]; then exit 3; fi; echo $$ > " +
                        d.file("pid0") + "; exec sleep 300'");
  INFO(r.output);
  CHECK(r.code != 0);
  CHECK_THAT(r.output, Catch::Contains("rank 1 of 2 exited with code 3"));
  // Rank 0 no longer exists (it was stopped, not left behind).
  if (file_exists(d.file("pid0"))) {
    const std::string pid = read_file(d.file("pid0"));
    CHECK_FALSE(file_exists("/proc/" + pid.substr(0, pid.find('\n')) + "/cmdline"));
  }
  Run none = test::run_cli("launch --nproc 2");
  CHECK(none.code != 0);
}
