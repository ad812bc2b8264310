// Trains a compression method from a RunConfig. The auto-encoders
// (PQVAE-shared, VQ-VAE k-means PQ): Adam with a step schedule that persists
// across epochs, per-epoch validation on the held-out classes, best/last
// checkpoints, exact resume, JSONL metrics and codebook health. The fitted
// methods (learned SQ, FAISS anchors, float16/int8/int4) go through
// fit_quantizer_run (train/fit_quantizer.h), which writes the same outputs.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "models/run_config.h"

namespace semcodec {

struct TrainOptions {
  bool resume = false;     // continue from <output.dir>/last.safetensors
  bool overwrite = false;  // start fresh even if the run dir has checkpoints
  bool progress = true;    // progress bar on stderr
  std::string config_source = "<config>";
};

struct TrainResult {
  std::string run_dir, best_checkpoint, last_checkpoint, metrics_log;
  nlohmann::json last_epoch;  // the metrics record of the final epoch
  double best_top1 = -1;
  int64_t best_epoch = -1;
  bool main_rank = true;  // false on the other ranks of a multi-process run (they write nothing)
};

// The run directory (created) and the paths of its checkpoints and metrics log.
TrainResult run_outputs(const std::string& run_dir);
TrainResult train_pqvae(const RunConfig& config, const TrainOptions& options);
// Dispatches on model.method: pqvae_shared, vqvae_kmeans_pq (trained), or any
// fitted method (docs/baselines.md).
TrainResult train_run(const RunConfig& config, const TrainOptions& options);

}  // namespace semcodec
