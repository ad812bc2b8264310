// A small but real training setup shared by the trainer tests: a synthetic
// CLIP-like set (100 classes x 20, D = 64) and a narrow PQVAE-shared.
#pragma once
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/feature_store.h"
#include "data/synthetic.h"
#include "models/run_config.h"
#include "test_support.h"
#include "train/trainer.h"

namespace semcodec::test {

inline RunConfig small_run(const std::string& features, const std::string& out) {
  RunConfig cfg;
  cfg.data.features = features;
  cfg.data.split.mode = "seed";
  cfg.data.split.heldout_classes = 20;
  cfg.model.embed_dim = 64;
  cfg.model.hidden_channels = 64;
  cfg.model.body_channels = 32;
  cfg.model.residual_channels = 16;
  cfg.model.latent_channels = 32;
  cfg.model.d_sub = 8;
  cfg.model.codebook_size = 8;
  cfg.model.init_samples = 2000;
  cfg.model.dead_code_after_steps = 5;
  cfg.train.epochs = 4;
  cfg.train.batch_size = 32;
  cfg.train.lr = 2e-3;
  cfg.train.threads = 1;
  cfg.train.device = "cpu";
  cfg.output.dir = out;
  return cfg;
}

inline std::string write_small_synthetic(const TempDir& dir) {
  SyntheticOptions o;
  o.num_classes = 100;
  o.per_class = 20;
  o.dim = 64;
  o.semantic_rank = 24;
  o.nuisance_rank = 24;
  o.num_superclasses = 10;
  std::string path = dir.file("small.h5");
  write_feature_file(path, make_synthetic(o));
  return path;
}

// One JSON record per line of a run's metrics.jsonl.
inline std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::ifstream f(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

inline TrainOptions quiet() {
  TrainOptions o;
  o.progress = false;
  return o;
}

// Trains `cfg` and, beside it in `first_dir`, the same run cut to one epoch
// of two steps (an almost untrained model), and checks that the full run
// ends with held-out cosine and top-1 at least 0.05 higher. Returns the full
// run and both metric logs.
struct ShortRunComparison {
  TrainResult run;
  std::vector<nlohmann::json> first, full;
};
inline ShortRunComparison check_training_improves(const RunConfig& cfg, const std::string& first_dir) {
  RunConfig first = cfg;
  first.train.epochs = 1;
  first.train.max_steps_per_epoch = 2;
  first.output.dir = first_dir;
  ShortRunComparison c;
  c.first = read_metrics(train_run(first, quiet()).metrics_log);
  c.run = train_run(cfg, quiet());
  c.full = read_metrics(c.run.metrics_log);
  REQUIRE(static_cast<int64_t>(c.full.size()) == cfg.train.epochs);
  const double cos0 = c.first[0]["val_mean_cosine"], cos1 = c.full.back()["val_mean_cosine"];
  const double acc0 = c.first[0]["val_top1"], acc1 = c.full.back()["val_top1"];
  INFO("cosine " << cos0 << " -> " << cos1 << ", top1 " << acc0 << " -> " << acc1);
  CHECK(cos1 > cos0 + 0.05);
  CHECK(acc1 > acc0 + 0.05);
  return c;
}

}  // namespace semcodec::test
