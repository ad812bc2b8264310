// `semcodec train` killed with SIGKILL at random moments, resumed each time,
// ends with the checkpoint and the metrics of an uninterrupted run, bit for
// bit; and a second trainer in a run directory that is being written is
// refused (the short, in-suite version of scripts/chaos.sh).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "cli_runner.h"
#include "models/checkpoint.h"
#include "test_support.h"
#include "util/atomic_file.h"
#include "util/run_lock.h"

using namespace semcodec;
using semcodec::test::Run;
using semcodec::test::TempDir;

namespace {

std::vector<nlohmann::json> records(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Starts `semcodec args...` with its output discarded; returns the pid.
pid_t start(std::vector<std::string> args) {
  args.insert(args.begin(), SEMCODEC_CLI_PATH);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

}  // namespace

TEST_CASE("train killed with SIGKILL at random moments resumes to the uninterrupted run's checkpoint and metrics",
          "[cli][chaos]") {
  TempDir d("cli-kill-train");
  const std::string data = test::small_feature_file(d, "s.h5");
  test::write_text(d.file("model.yaml"), std::string(test::kSmallModelYaml) + "  device: cpu\n");
  std::string cfg = read_file(d.file("model.yaml"));
  cfg.replace(cfg.find("epochs: 1"), 9, "epochs: 6");
  test::write_text(d.file("model.yaml"), cfg);
  const std::vector<std::string> common{"train", "-q", "-c", d.file("model.yaml"), "--features", data};

  const Run full = test::run_cli("train -q -c " + d.file("model.yaml") + " --features " + data + " -o " + d.file("full"));
  INFO(full.output);
  REQUIRE(full.code == 0);

  std::mt19937 rng(20261206);
  const std::string killed = d.file("killed");
  int kills = 0;
  for (int attempt = 0; attempt < 6; ++attempt) {
    std::vector<std::string> args = common;
    args.insert(args.end(), {"-o", killed});
    if (file_exists(killed + "/last.safetensors")) args.push_back("--resume");
    const pid_t pid = start(args);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(200, 2500)(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) ++kills;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break;  // finished before the kill
  }
  const Run last = test::run_cli("train -q -c " + d.file("model.yaml") + " --features " + data + " -o " + killed +
                                 (file_exists(killed + "/last.safetensors") ? " --resume" : ""));
  INFO(last.output);
  REQUIRE(last.code == 0);
  CHECK(kills >= 1);

  const Checkpoint a = load_checkpoint(d.file("full/last.safetensors"));
  const Checkpoint b = load_checkpoint(killed + "/last.safetensors");
  REQUIRE(a.model.size() == b.model.size());
  for (const auto& [name, t] : a.model) {
    INFO(name);
    CHECK(at::equal(t, b.model.at(name)));
  }
  const auto ra = records(d.file("full/metrics.jsonl")), rb = records(killed + "/metrics.jsonl");
  REQUIRE(ra.size() == 6);
  REQUIRE(rb.size() == 6);  // one record per epoch: none missing, none twice, none torn
  for (size_t i = 0; i < ra.size(); ++i) {
    CHECK(rb[i]["epoch"] == ra[i]["epoch"]);
    CHECK(rb[i]["val_top1"] == ra[i]["val_top1"]);
    CHECK(rb[i]["train_loss"] == ra[i]["train_loss"]);
  }
  for (const auto& e : std::filesystem::directory_iterator(killed))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("a second trainer in a run directory being written is refused", "[cli][chaos]") {
  TempDir d("cli-lock-train");
  const std::string data = test::small_feature_file(d, "s.h5");
  test::write_text(d.file("model.yaml"), std::string(test::kSmallModelYaml) + "  device: cpu\n");
  const RunDirectoryLock held(d.file("run"));
  const Run r = test::run_cli("train -q -c " + d.file("model.yaml") + " --features " + data + " -o " + d.file("run"));
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains(d.file("run") + ": another semcodec process (pid " + std::to_string(::getpid()) +
                                       ") is writing this run directory"));
  CHECK_FALSE(file_exists(d.file("run/last.safetensors")));
}

TEST_CASE("a run killed between an epoch's checkpoint and its metrics record gets the record back on resume",
          "[cli][chaos]") {
  TempDir d("cli-kill-record");
  const std::string data = test::small_feature_file(d, "s.h5");
  test::write_text(d.file("model.yaml"), std::string(test::kSmallModelYaml) + "  device: cpu\n");
  std::string cfg = read_file(d.file("model.yaml"));
  cfg.replace(cfg.find("epochs: 1"), 9, "epochs: 2");
  test::write_text(d.file("model.yaml"), cfg);
  const std::string args = "train -q -c " + d.file("model.yaml") + " --features " + data + " -o " + d.file("run");
  REQUIRE(test::run_cli(args).code == 0);
  const std::string log = d.file("run/metrics.jsonl");
  const std::string whole = read_file(log);
  const auto before = records(log);
  REQUIRE(before.size() == 2);
  // What a kill right after last.safetensors of epoch 2 leaves: epoch 2's line half written.
  test::write_text(log, whole.substr(0, whole.size() - 10));
  const Run resumed = test::run_cli(args + " --resume");
  INFO(resumed.output);
  REQUIRE(resumed.code == 0);
  const auto after = records(log);
  REQUIRE(after.size() == 2);
  CHECK(after[1] == before[1]);
  CHECK(read_file(log) == whole);
}
