#include "train/checkpoint_eval.h"

#include <ATen/ATen.h>

#include <filesystem>

#include "data/class_split.h"
#include "data/device.h"
#include "data/feature_store.h"
#include "eval/evaluate.h"
#include "models/pqvae/pqvae_shared.h"
#include "train/checkpoint.h"
#include "util/error.h"

namespace semcodec {

namespace {
std::vector<int64_t> all_classes(int64_t n) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// Classes that actually have rows, in ascending order.
std::vector<int64_t> present(const FeatureSet& set, const std::vector<int64_t>& classes) {
  at::Tensor counts = at::bincount(set.labels.to(at::kLong), {}, set.num_classes());
  std::vector<int64_t> out;
  for (int64_t c : classes)
    if (c < counts.size(0) && counts[c].item<int64_t>() > 0) out.push_back(c);
  return out;
}
}  // namespace

nlohmann::json evaluate_checkpoint(const std::string& checkpoint, const std::string& features,
                                   const CheckpointEvalOptions& opt) {
  Checkpoint ck = load_checkpoint(checkpoint);
  auto model = make_model(ck, checkpoint);
  model->to(resolve_device(opt.device));
  FeatureSet set = read_feature_file(features);
  require(set.dim() == ck.config.model.embed_dim,
          "{}: features have D = {} but checkpoint {} was trained on D = {}", features, set.dim(), checkpoint,
          ck.config.model.embed_dim);

  // The checkpoint's split applies only to the dataset it was trained on.
  const bool same_dataset = ck.dataset.value("num_classes", int64_t{-1}) == set.num_classes() &&
                            ck.dataset.value("dataset", std::string()) == set.attrs.dataset;
  std::vector<int64_t> classes;
  std::string which = opt.classes;
  if (which == "auto") which = same_dataset ? "heldout" : "all";
  if (which == "heldout" || which == "train") {
    require(same_dataset, "{}: --classes {} refers to the checkpoint's split, but {} is another dataset ({}, {} classes)",
            checkpoint, which, features, set.attrs.dataset, set.num_classes());
    classes = which == "heldout" ? ck.heldout_classes : ck.train_classes;
  } else if (which == "all") {
    classes = all_classes(set.num_classes());
  } else {
    classes = read_class_list(which);
  }
  classes = present(set, classes);
  require(!classes.empty(), "{}: none of the evaluated classes has a row", features);
  FeatureSet subset = select_classes(set, classes);

  FeatureSet reference;
  EvalSpec spec;
  spec.classes = classes;
  spec.classifier = opt.classifier;
  if (!opt.reference_features.empty()) {
    reference = read_feature_file(opt.reference_features);
    spec.reference = &reference;
  }
  spec.label = opt.label.empty() ? std::filesystem::path(checkpoint).parent_path().filename().string() : opt.label;
  nlohmann::json r = evaluate_quantizer(*model, subset, spec);
  r["checkpoint"] = checkpoint;
  r["features"] = features;
  r["class_set"] = which;
  r["dataset"] = set.attrs.dataset;
  return r;
}

}  // namespace semcodec
