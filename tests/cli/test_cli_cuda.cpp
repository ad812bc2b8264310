// The real binary on a GPU: training on CUDA ends where the CPU run ends, its
// checkpoint compresses on either device to streams the CPU decodes, and
// data-parallel ranks on CUDA (Gloo through host copies on one GPU; NCCL with
// one GPU per rank) reach the parameters of one rank. Skipped without CUDA
// (cuda_support.h); the NCCL case also needs 2 GPUs and a build with NCCL.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "checkpoint_diff.h"
#include "cli_runner.h"
#include "codec/checkpoint_codec.h"
#include "cuda_support.h"
#include "data/feature_store.h"
#include "models/checkpoint.h"
#include "test_support.h"
#include "train/data_parallel.h"
#include "train/train_fixture.h"
#include "util/atomic_file.h"

using namespace semcodec;
using semcodec::test::Run;
using semcodec::test::TempDir;
using semcodec::test::max_relative_difference;

namespace {
// The small model of the CLI tests, 2 epochs of 6 steps, float32, no restarts.
struct Setup {
  TempDir dir{"cli-cuda"};
  std::string data, train;
  Setup() {
    data = test::small_feature_file(dir, "s.h5");
    test::write_text(dir.file("m.yaml"), std::string(test::kSmallModelYaml) + "  max_steps_per_epoch: 6\n");
    train = " train -q -c " + dir.file("m.yaml") + " --features " + data +
            " --set train.epochs=2 --set model.dead_code_restart=false --set model.compute_dtype=float32"
            " --set train.dist_bucket_mb=0.002";
  }
  Run run(const std::string& args) const { return test::run_cli(args); }
};

// Trains the setup on 1 rank with `one_sets` and on 2 ranks of `semcodec
// launch` with `two_sets`; the parameters must agree to float tolerance.
void check_two_ranks_match_one(const Setup& s, const std::string& one_sets, const std::string& two_sets) {
  const Run one = s.run(s.train + one_sets + " -o " + s.dir.file("one"));
  INFO(one.output);
  REQUIRE(one.code == 0);
  const Run two =
      s.run("launch --nproc 2 -- " + std::string(SEMCODEC_CLI_PATH) + s.train + two_sets + " -o " + s.dir.file("two"));
  INFO(two.output);
  REQUIRE(two.code == 0);
  const double rel = max_relative_difference(load_checkpoint(s.dir.file("one/last.safetensors")),
                                             load_checkpoint(s.dir.file("two/last.safetensors")));
  INFO("max relative parameter difference " << rel);
  CHECK(rel < 1e-4);
}
}  // namespace

TEST_CASE("CUDA: training on the GPU ends where the CPU run ends, and its streams decode on the CPU", "[cli][cuda]") {
  if (!test::cuda_present()) return;
  Setup s;
  const std::string cpu_dir = s.dir.file("cpu"), gpu_dir = s.dir.file("gpu");
  const Run a = s.run(s.train + " --set train.device=cpu -o " + cpu_dir);
  INFO(a.output);
  REQUIRE(a.code == 0);
  const Run b = s.run(s.train + " --set train.device=cuda -o " + gpu_dir);
  INFO(b.output);
  REQUIRE(b.code == 0);
  // Same arithmetic up to float32 rounding; k-means initialization and the
  // assignments may still flip at near-ties, so the runs are compared by what
  // they reach, and the parameters only coarsely.
  const auto runs_a = test::read_metrics(cpu_dir + "/metrics.jsonl"), runs_b = test::read_metrics(gpu_dir + "/metrics.jsonl");
  REQUIRE(!runs_a.empty());
  REQUIRE(!runs_b.empty());
  const nlohmann::json &ma = runs_a.back(), &mb = runs_b.back();
  INFO("CPU " << ma.dump() << "\nGPU " << mb.dump());
  CHECK(std::abs(ma["val_mean_cosine"].get<double>() - mb["val_mean_cosine"].get<double>()) < 0.01);
  CHECK(std::abs(ma["train_loss"].get<double>() - mb["train_loss"].get<double>()) <
        0.02 * std::abs(ma["train_loss"].get<double>()));
  const double rel = max_relative_difference(load_checkpoint(cpu_dir + "/last.safetensors"),
                                             load_checkpoint(gpu_dir + "/last.safetensors"));
  INFO("max relative parameter difference " << rel);
  CHECK(rel < 0.05);

  // The GPU run's checkpoint compresses on the GPU and on the CPU; this
  // process decodes both streams on the CPU.
  const std::string ckpt = gpu_dir + "/best.safetensors";
  for (const std::string device : {"cuda", "cpu"}) {
    const Run c = s.run("compress -q --device " + device + " --checkpoint " + ckpt + " --features " + s.data +
                        " --out " + s.dir.file(device + ".scb"));
    INFO(c.output);
    REQUIRE(c.code == 0);
  }
  auto codec = load_codec(ckpt, "cpu");
  at::Tensor idx[2];
  for (int i = 0; i < 2; ++i) {
    const std::string bytes = read_file(s.dir.file(i == 0 ? "cuda.scb" : "cpu.scb"));
    const DecodedStream ds = codec->decode_indices(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    idx[i] = indices_to_tensor(ds.indices, ds.header.items, ds.header.slots);
  }
  REQUIRE(idx[0].sizes() == idx[1].sizes());
  const double same = idx[0].eq(idx[1]).to(at::kDouble).mean().item<double>();
  INFO("fraction of equal indices, GPU-made against CPU-made stream " << same);
  CHECK(same > 0.99);
  const Run d = s.run("decompress -q --device cpu " + s.dir.file("cuda.scb") + " --checkpoint " + ckpt +
                      " --features " + s.data + " --out " + s.dir.file("r.h5"));
  INFO(d.output);
  REQUIRE(d.code == 0);
  CHECK(read_feature_file(s.dir.file("r.h5")).size() == read_feature_file(s.data).size());
}

TEST_CASE("CUDA: 2 Gloo ranks sharing one GPU train the parameters of 1 rank on it", "[cli][cuda][dist]") {
  if (!test::cuda_present()) return;
  if (!have_gloo_backend()) {
    WARN("skipped: this build has no c10d Gloo support");
    return;
  }
  const std::string sets = " --set train.device=cuda:0 --set train.dist_backend=gloo";
  check_two_ranks_match_one(Setup{}, sets, sets);
}

TEST_CASE("CUDA: 2 NCCL ranks, one GPU each, train the parameters of 1 rank", "[cli][cuda][dist]") {
  if (!test::cuda_present()) return;
  if (test::cuda_device_count() < 2 || !have_nccl_backend()) {
    WARN("skipped: needs 2 GPUs (NCCL refuses two ranks on one GPU) and a build with c10d NCCL; this one has "
         << test::cuda_device_count() << " GPU(s) and NCCL " << (have_nccl_backend() ? "on" : "off"));
    return;
  }
  // "cuda" without an index: local rank L takes GPU L.
  check_two_ranks_match_one(Setup{}, " --set train.device=cuda:0", " --set train.device=cuda --set train.dist_backend=nccl");
}
