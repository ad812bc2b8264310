// What every training run shares, whether it trains a network
// (network_training.h) or fits a method in one pass (one_pass_fit.h): its
// options and outputs, the class split, the held-out validator, the
// provenance of the training features, and the checkpoint it writes or
// resumes.
#pragma once
#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/class_split.h"
#include "data/feature_set.h"
#include "eval/classifiers.h"
#include "models/checkpoint.h"
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

// Sets the CPU threads a run computes with: `train.threads`, split between
// OpenBLAS and LibTorch's pool as its GEMM backend needs (a network in
// bfloat16 on the CPU runs its GEMMs in oneDNN). Training sets them up and a
// sweep cell evaluates with them, trained in that process or not: reductions
// split over another thread count round differently.
void configure_run_threads(const RunConfig& cfg);

// The run directory (created) and the paths of its checkpoints and metrics log.
TrainResult run_outputs(const std::string& run_dir);
// A run directory that holds a checkpoint is only written with --resume or --overwrite.
void refuse_to_overwrite(const TrainResult& outputs, const TrainOptions& options);

// data.split applied to a file with `num_classes` classes (mode all: every
// class both trains and validates).
// The split's class files resolve against `project_dir` (RunConfig::project_dir).
ClassSplit make_run_split(const SplitConfig& split, int64_t num_classes, const std::string& source,
                          const std::string& project_dir = "");

// Held-out accuracy of reconstructions: zero-shot against the class text
// embeddings when the file has them, else nearest class mean of the clean
// held-out features.
struct HeldoutValidator {
  FeatureSet set;
  std::vector<int64_t> classes;
  at::Tensor prototypes;
  std::string classifier;
  Accuracy clean;

  HeldoutValidator(FeatureSet s, std::vector<int64_t> cls);
  Accuracy score(const at::Tensor& features) const;
  // The validation fields of a metrics.jsonl record for `recon`, the
  // reconstruction of set.features: val_classifier, val_top1, val_top5,
  // val_clean_top1, val_clean_top5, val_mean_cosine. `acc` receives the score.
  nlohmann::json metrics(const at::Tensor& recon, Accuracy& acc) const;
};

nlohmann::json dataset_provenance(const std::string& path, const FeatureSet& set);

// The run's feature file (data.features) split by data.split into training
// rows and the held-out validator; a wrong dimension or an empty side of the
// split is an error naming the file and the config `source`.
struct RunData {
  FeatureSet all;
  ClassSplit split;
  FeatureSet train;
  HeldoutValidator val;
};
RunData load_run_data(const RunConfig& cfg, const std::string& source);

// The run's last checkpoint, to resume: it must exist and have been trained
// with the same model config and class split (errors name it and `source`).
Checkpoint checkpoint_to_resume(const TrainResult& outputs, const RunConfig& cfg, const ClassSplit& split,
                                const std::string& source);
// A checkpoint of this run without tensors or state: its config, class split
// and dataset provenance.
Checkpoint run_checkpoint(const RunConfig& cfg, const RunData& data);

}  // namespace semcodec
