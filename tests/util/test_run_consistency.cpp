// Crash consistency of a run directory: one writer at a time (the lock the
// kernel drops when its holder dies), the metrics log cut back to the
// checkpoint a run resumes from, and temporaries of killed writers removed.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "test_support.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/jsonl.h"
#include "util/run_lock.h"

using namespace semcodec;
using semcodec::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("run directory lock: a second writer is refused, a dead holder's lock is free", "[run_lock]") {
  TempDir d("run-lock");
  const std::string dir = d.file("run");
  {
    RunDirectoryLock first(dir);
    CHECK(fs::exists(dir + "/.lock"));
    CHECK(read_file(dir + "/.lock") == std::to_string(::getpid()));
    // flock locks belong to the open file: a second open in this process conflicts like another process.
    CHECK_THROWS_WITH(RunDirectoryLock(dir), Catch::Contains(dir) && Catch::Contains("another semcodec process") &&
                                                 Catch::Contains("(pid " + std::to_string(::getpid()) + ")"));
  }
  CHECK_NOTHROW(RunDirectoryLock(dir));  // released with its holder
  // A holder killed with SIGKILL leaves the lock file, not the lock.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    RunDirectoryLock held(dir);
    ::pause();
    ::_exit(0);
  }
  for (int i = 0; i < 200 && read_file(dir + "/.lock") != std::to_string(child); ++i) ::usleep(10000);
  CHECK_THROWS_WITH(RunDirectoryLock(dir), Catch::Contains("(pid " + std::to_string(child) + ")"));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK_NOTHROW(RunDirectoryLock(dir));
}

TEST_CASE("stale temporaries of killed writers are removed, nothing else", "[run_lock]") {
  TempDir d("run-temps");
  std::ofstream(d.file("last.safetensors.tmp-4242-0")) << "half";
  std::ofstream(d.file("metrics.jsonl.tmp-1-17")) << "half";
  std::ofstream(d.file("last.safetensors")) << "whole";
  std::ofstream(d.file("notes.tmp")) << "mine";
  CHECK(remove_stale_temporaries(d.path()) == 2);
  CHECK(fs::exists(d.file("last.safetensors")));
  CHECK(fs::exists(d.file("notes.tmp")));
  CHECK_FALSE(fs::exists(d.file("last.safetensors.tmp-4242-0")));
}

TEST_CASE("the metrics log is cut back to the epochs the checkpoint holds, torn lines dropped", "[jsonl]") {
  TempDir d("metrics-cut");
  const std::string log = d.file("metrics.jsonl");
  std::ofstream(log) << "{\"epoch\":1,\"val_top1\":0.1}\n"
                        "{\"epoch\":2,\"val_top1\":0.2}\n"
                        "{\"epoch\":3,\"val_top1\":0.3}\n"
                        "{\"epoch\":4,\"val_to";  // killed mid-write
  CHECK(truncate_metrics_log(log, 2) == 2);
  CHECK(read_file(log) == "{\"epoch\":1,\"val_top1\":0.1}\n{\"epoch\":2,\"val_top1\":0.2}\n");
  CHECK(truncate_metrics_log(log, 5) == 2);  // nothing to cut: unchanged
  CHECK(read_file(log) == "{\"epoch\":1,\"val_top1\":0.1}\n{\"epoch\":2,\"val_top1\":0.2}\n");
  CHECK(truncate_metrics_log(log, 0) == 0);
  CHECK(read_file(log).empty());
  CHECK(truncate_metrics_log(d.file("absent.jsonl"), 3) == 0);
}
