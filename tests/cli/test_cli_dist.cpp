// Data-parallel training through the real binary: 2 Gloo ranks started by
// `semcodec launch` on loopback must end with the parameters 1 rank reaches at
// the same global batch (to float tolerance), and only rank 0 writes.
#include <ATen/ATen.h>
#include <torch/version.h>

#include <catch2/catch.hpp>

#include "checkpoint_diff.h"
#include "cli_runner.h"
#include "models/checkpoint.h"
#include "test_support.h"
#include "train/data_parallel.h"
#include "util/atomic_file.h"

using namespace semcodec;
using semcodec::test::Run;
using semcodec::test::TempDir;
using semcodec::test::max_relative_difference;

TEST_CASE("2 Gloo ranks at global batch B train the same parameters as 1 rank at batch B", "[cli][dist]") {
  TempDir d("cli-dist");
  const std::string data = test::small_feature_file(d, "s.h5");
  test::write_text(d.file("m.yaml"), std::string(test::kSmallModelYaml) +
                                         "  max_steps_per_epoch: 6\n  device: cpu\n  lr_warmup_steps: 2\n");
  // Epoch 1 (6 steps) ends inside the quantizer warm-up (8 steps) and the warm-up ends in
  // epoch 2: both codebook refits are collectives. The k-means baseline also sums its EMA
  // statistics over the ranks.
  for (const std::string method : {"pqvae_shared", "vqvae_kmeans_pq"}) {
    INFO(method);
    const std::string sets = " --set train.epochs=2 --set model.quantizer_warmup_steps=8 "
                             "--set model.dead_code_restart=false --set train.dist_bucket_mb=0.002 --set model.method=" + method;
    const std::string one_dir = d.file(method + "-one"), two_dir = d.file(method + "-two");
    Run one = test::run_cli("train -q -c " + d.file("m.yaml") + " --features " + data + " -o " + one_dir + sets);
    INFO(one.output);
    REQUIRE(one.code == 0);
    Run two = test::run_cli("launch --nproc 2 -- " + std::string(SEMCODEC_CLI_PATH) + " train -q -c " +
                            d.file("m.yaml") + " --features " + data + " -o " + two_dir + sets);
    INFO(two.output);
    if (two.output.find("no c10d Gloo support") != std::string::npos) {
      WARN("this build has no c10d Gloo support (libgloo-dev missing): data-parallel test skipped");
      return;
    }
    REQUIRE(two.code == 0);
    const Checkpoint a = load_checkpoint(one_dir + "/last.safetensors");
    const Checkpoint b = load_checkpoint(two_dir + "/last.safetensors");
    CHECK(b.state.step == a.state.step);
    CHECK(b.state.step == 12);
    const double rel = max_relative_difference(a, b);
    INFO("max relative parameter difference " << rel);
    CHECK(rel < 1e-4);
    // Rank 0 reported; the metrics log has one record per epoch, not one per rank.
    CHECK_THAT(two.output, Catch::Contains("best checkpoint"));
    CHECK_THAT(two.output, !Catch::Contains("epoch -1"));
    const std::string metrics = read_file(two_dir + "/metrics.jsonl");
    CHECK(std::count(metrics.begin(), metrics.end(), '\n') == 2);
  }
}

TEST_CASE("a rank that cannot reach its peers fails with a clear error instead of hanging", "[cli][dist]") {
  TempDir d("cli-dist-alone");
  const std::string data = test::small_feature_file(d, "s.h5");
  test::write_text(d.file("m.yaml"), std::string(test::kSmallModelYaml) + "  device: cpu\n  dist_timeout_s: 3\n");
  // Rank 1 of 2 started alone: rank 0 (the rendezvous server) never comes.
  Run r = test::run_cli("train -q -c " + d.file("m.yaml") + " --features " + data + " -o " + d.file("run"), "2>&1",
                        "RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1");
  INFO(r.output);
  CHECK(r.code != 0);
  if (r.output.find("no c10d Gloo support") != std::string::npos) {
    WARN("this build has no c10d Gloo support (libgloo-dev missing): rendezvous timeout not tested");
  } else {
    CHECK_THAT(r.output, Catch::Contains("rank 1 of 2") && Catch::Contains("127.0.0.1:1"));
  }
  CHECK_FALSE(file_exists(d.file("run/last.safetensors")));
}

TEST_CASE("a run started on 2 ranks resumes on 1 rank where an uninterrupted 1-rank run would be", "[cli][dist]") {
  TempDir d("cli-dist-resume");
  const std::string data = test::small_feature_file(d, "s.h5");
  test::write_text(d.file("m.yaml"), std::string(test::kSmallModelYaml) +
                                         "  max_steps_per_epoch: 6\n  device: cpu\n  lr_warmup_steps: 2\n");
  // No warm-up: the codebook is fitted at step 0, from the same weights on every world size (a k-means
  // fit on latents that float rounding already moved can pick other centroids, amplifying 1e-7 to 1e-4).
  const std::string sets = " --set model.quantizer_warmup_steps=0 --set model.dead_code_restart=false";
  const std::string train = "train -q -c " + d.file("m.yaml") + " --features " + data + sets;
  const Run whole = test::run_cli(train + " --set train.epochs=2 -o " + d.file("whole"));
  INFO(whole.output);
  REQUIRE(whole.code == 0);
  const Run first = test::run_cli("launch --nproc 2 -- " + std::string(SEMCODEC_CLI_PATH) + " " + train +
                                  " --set train.epochs=1 -o " + d.file("split"));
  INFO(first.output);
  if (first.output.find("no c10d Gloo support") != std::string::npos) {
    WARN("this build has no c10d Gloo support (libgloo-dev missing): world-size change not tested");
    return;
  }
  REQUIRE(first.code == 0);
  const Run second = test::run_cli(train + " --set train.epochs=2 --resume -o " + d.file("split"));
  INFO(second.output);
  REQUIRE(second.code == 0);
  const Checkpoint a = load_checkpoint(d.file("whole/last.safetensors"));
  const Checkpoint b = load_checkpoint(d.file("split/last.safetensors"));
  CHECK(b.state.step == a.state.step);
  const double rel = max_relative_difference(a, b);
  INFO("max relative parameter difference " << rel);
  CHECK(rel < 1e-4);
}

TEST_CASE("semcodec --version names the LibTorch, the GPUs and the c10d backends of this build", "[cli][dist]") {
  const Run r = test::run_cli("--version");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("LibTorch " TORCH_VERSION));
  CHECK_THAT(r.output, Catch::Contains(at::hasCUDA() ? "GPU(s)" : "CUDA: none"));
  CHECK_THAT(r.output, Catch::Contains(have_gloo_backend() ? "c10d backends: gloo" : "c10d backends: none"));
  CHECK((r.output.find("nccl") != std::string::npos) == have_nccl_backend());
}
