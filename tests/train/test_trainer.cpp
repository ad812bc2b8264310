#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/feature_store.h"
#include "models/checkpoint.h"
#include "models/pqvae/pqvae_shared.h"
#include "train/trainer.h"
#include "train_fixture.h"
#include "util/atomic_file.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {
using test::quiet;
using test::read_metrics;
}  // namespace

TEST_CASE("a short training run raises held-out cosine and accuracy", "[train]") {
  TempDir dir("train-improves");
  const std::string data = test::write_small_synthetic(dir);
  RunConfig cfg = test::small_run(data, dir.file("run"));
  cfg.train.epochs = 6;
  cfg.train.max_steps_per_epoch = 0;
  const auto [r, m0, m] = test::check_training_improves(cfg, dir.file("first"));
  // The clean upper bound is a property of the data, the same in both runs.
  CHECK(m.back()["val_clean_top1"].get<double>() == Approx(m0[0]["val_clean_top1"].get<double>()));
  // No collapse: with k-means init and restarts every codeword is in use.
  CHECK(m.back()["codebook_used"].get<int64_t>() == 8);
  CHECK(m.back()["codebook_perplexity"].get<double>() > 4.0);
  // The best checkpoint holds the best epoch's accuracy.
  Checkpoint best = load_checkpoint(r.best_checkpoint);
  double best_seen = 0;
  for (auto& rec : m) best_seen = std::max(best_seen, rec["val_top1"].get<double>());
  CHECK(best.state.best_top1 == Approx(best_seen));
  CHECK(best.optimizer.empty());
}

TEST_CASE("the quantizer warm-up trains unquantized, then draws the codebook from the encoder's outputs", "[train]") {
  TempDir dir("train-warmup");
  const std::string data = test::write_small_synthetic(dir);
  RunConfig cfg = test::small_run(data, dir.file("warm"));
  cfg.train.epochs = 1;
  cfg.train.max_steps_per_epoch = 4;
  cfg.model.quantizer_warmup_steps = 10;  // the epoch ends inside the warm-up
  cfg.model.codebook_init = "sample";     // codewords are encoder sub-vectors, unchanged by k-means
  cfg.model.dead_code_restart = false;
  const TrainResult r = train_run(cfg, quiet());
  const auto m = read_metrics(r.metrics_log);
  REQUIRE(m.size() == 1);
  // The four steps trained the auto-encoder alone: no codebook or commitment term.
  CHECK(m[0]["train_codebook_loss"].get<double>() == 0.0);
  CHECK(m[0]["train_commitment_loss"].get<double>() == 0.0);
  RunConfig cold = cfg;
  cold.model.quantizer_warmup_steps = 0;
  cold.output.dir = dir.file("cold");
  const auto mc = read_metrics(train_run(cold, quiet()).metrics_log);
  CHECK(mc[0]["train_codebook_loss"].get<double>() > 0.0);

  // The epoch ended inside the warm-up, so the codebook was fitted then, to
  // the saved encoder: every codeword is one of its training sub-vectors.
  const Checkpoint ck = load_checkpoint(r.last_checkpoint);
  auto model = load_pqvae_shared(ck, r.last_checkpoint);
  at::NoGradGuard g;
  const at::Tensor train_x = select_classes(read_feature_file(data), ck.train_classes).features;
  const at::Tensor sub = model->pq->subvectors(model->forward(train_x, /*bypass_quantizer=*/true).latent);
  const at::Tensor cb = model->pq->codebook.detach();
  REQUIRE(cb.size(0) == 8);
  const at::Tensor nearest = at::cdist(cb.to(at::kDouble), sub.to(at::kDouble)).amin(1);
  INFO("distance of each codeword to the nearest encoder sub-vector: " << nearest);
  CHECK(nearest.max().item<double>() < 1e-5);
  // Eight different sub-vectors, not one repeated (sub-vectors are unit-scale; the minimum pairwise distance is well above rounding).
  const at::Tensor pairwise = at::cdist(cb, cb) + at::eye(8) * 10;
  CHECK(pairwise.min().item<double>() > 1e-3);
}

TEST_CASE("resume after N epochs equals an uninterrupted run bit for bit", "[train]") {
  TempDir dir("train-resume");
  const std::string data = test::write_small_synthetic(dir);
  RunConfig full = test::small_run(data, dir.file("full"));
  full.train.epochs = 3;
  full.train.max_steps_per_epoch = 8;
  full.train.lr_step_epochs = 2;  // the schedule must carry across the restart
  train_run(full, quiet());

  RunConfig part = full;
  part.output.dir = dir.file("part");
  part.train.epochs = 1;
  train_run(part, quiet());
  // Re-running without --resume must refuse to clobber the run.
  REQUIRE_THROWS_WITH(train_run(part, quiet()), Catch::Contains("--resume"));
  part.train.epochs = 3;
  TrainOptions resume = quiet();
  resume.resume = true;
  train_run(part, resume);

  Checkpoint a = load_checkpoint(dir.file("full/last.safetensors"));
  Checkpoint b = load_checkpoint(dir.file("part/last.safetensors"));
  REQUIRE(a.model.size() == b.model.size());
  for (auto& [name, t] : a.model) {
    INFO(name);
    CHECK(at::equal(t, b.model.at(name)));
  }
  for (auto& [name, t] : a.optimizer) {
    INFO(name);
    CHECK(at::equal(t, b.optimizer.at(name)));
  }
  CHECK(a.state.step == b.state.step);
  CHECK(a.state.epochs_done == 3);
  auto ma = read_metrics(dir.file("full/metrics.jsonl"));
  auto mb = read_metrics(dir.file("part/metrics.jsonl"));
  REQUIRE(mb.size() == 3);
  CHECK(ma[2]["lr"].get<double>() == Approx(full.train.lr * full.train.lr_gamma));
  CHECK(mb[2]["val_top1"].get<double>() == ma[2]["val_top1"].get<double>());
}

TEST_CASE("checkpoint round trip is bit-exact and mismatches are named", "[train]") {
  TempDir dir("ckpt");
  ModelConfig mc;
  mc.embed_dim = 64, mc.hidden_channels = 32, mc.body_channels = 16, mc.residual_channels = 8;
  mc.latent_channels = 16, mc.d_sub = 4, mc.codebook_size = 4;
  auto model = std::make_shared<PQVAEShared>(mc);
  Checkpoint ck;
  ck.config.model = mc;
  ck.train_classes = {0, 2, 3};
  ck.heldout_classes = {1};
  ck.model = module_state(*model);
  ck.state.epochs_done = 7;
  ck.dataset = {{"dataset", "x"}};
  save_checkpoint(dir.file("c.safetensors"), ck);
  Checkpoint back = load_checkpoint(dir.file("c.safetensors"));
  CHECK(back.train_classes == ck.train_classes);
  CHECK(back.heldout_classes == ck.heldout_classes);
  CHECK(back.state.epochs_done == 7);
  CHECK(back.config.model.latent_channels == 16);
  for (auto& [name, t] : ck.model) {
    INFO(name);
    REQUIRE(back.model.count(name));
    CHECK(at::equal(t, back.model.at(name)));
  }
  auto rebuilt = load_pqvae_shared(back, "c.safetensors");
  at::Tensor x = at::randn({5, 64});
  CHECK(at::equal(model->decode(model->encode(x)), rebuilt->decode(rebuilt->encode(x))));

  // A model with another codebook size refuses these weights, naming the tensor.
  ModelConfig other = mc;
  other.codebook_size = 8;
  PQVAEShared wrong(other);
  REQUIRE_THROWS_WITH(load_module_state(wrong, back.model, "c.safetensors"),
                      Catch::Contains("c.safetensors") && Catch::Contains("pq.codebook") && Catch::Contains("[8, 4]"));
  // A safetensors file that is not a checkpoint.
  std::map<std::string, at::Tensor> t{{"w", at::zeros({2})}};
  REQUIRE_THROWS_WITH(load_checkpoint(dir.file("missing.safetensors")), Catch::Contains("missing.safetensors"));
}

TEST_CASE("training rejects features whose dimension differs from the model", "[train]") {
  TempDir dir("train-dims");
  const std::string data = test::write_small_synthetic(dir);
  RunConfig cfg = test::small_run(data, dir.file("run"));
  cfg.model.embed_dim = 768;
  REQUIRE_THROWS_WITH(train_run(cfg, quiet()), Catch::Contains("small.h5") && Catch::Contains("embed_dim"));
  CHECK_FALSE(file_exists(dir.file("run/last.safetensors")));
}

TEST_CASE("reset_optimizer_each_epoch re-creates Adam and the step schedule every epoch, as the release does",
          "[train]") {
  TempDir dir("train-reset-optim");
  const std::string data = test::write_small_synthetic(dir);
  RunConfig cfg = test::small_run(data, dir.file("reset"));
  cfg.train.epochs = 3;
  cfg.train.max_steps_per_epoch = 8;
  cfg.train.lr_step_epochs = 1;  // a schedule that would decay every epoch
  cfg.train.lr_gamma = 0.1;
  cfg.train.lr_warmup_steps = 0;
  cfg.train.reset_optimizer_each_epoch = true;
  train_run(cfg, quiet());
  const auto m = read_metrics(dir.file("reset/metrics.jsonl"));
  REQUIRE(m.size() == 3);
  for (const auto& rec : m) CHECK(rec["lr"].get<double>() == cfg.train.lr);  // StepLR re-created: never stepped
  const Checkpoint ck = load_checkpoint(dir.file("reset/last.safetensors"));
  CHECK(ck.state.step == 24);
  CHECK(ck.optimizer.at("step").item<int64_t>() == 8);  // Adam's count restarted with the last epoch

  // Without it the same schedule decays and Adam counts every step.
  cfg.train.reset_optimizer_each_epoch = false;
  cfg.output.dir = dir.file("keep");
  train_run(cfg, quiet());
  const auto k = read_metrics(dir.file("keep/metrics.jsonl"));
  REQUIRE(k.size() == 3);
  CHECK(k[2]["lr"].get<double>() == Approx(cfg.train.lr * 0.01));
  CHECK(load_checkpoint(dir.file("keep/last.safetensors")).optimizer.at("step").item<int64_t>() == 24);
}
