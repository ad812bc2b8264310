// What every training run needs before it fits anything, shared by the
// network trainer (trainer.cpp) and the one-pass fit of the non-neural
// methods (fit_quantizer.cpp): the class split, the held-out validator and
// the provenance of the training features.
#pragma once
#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/class_split.h"
#include "data/feature_set.h"
#include "eval/classifiers.h"
#include "models/run_config.h"

namespace semcodec {

// data.split applied to a file with `num_classes` classes (mode all: every
// class both trains and validates).
ClassSplit make_run_split(const SplitConfig& split, int64_t num_classes, const std::string& source);

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

}  // namespace semcodec
