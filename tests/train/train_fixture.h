// A small but real training setup shared by the trainer tests: a synthetic
// CLIP-like set (100 classes x 20, D = 64) and a narrow PQVAE-shared.
#pragma once
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/feature_store.h"
#include "data/synthetic.h"
#include "test_support.h"
#include "train/trainer.h"
#include "util/run_config.h"

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

}  // namespace semcodec::test
