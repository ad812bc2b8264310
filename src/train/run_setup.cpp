#include "train/run_setup.h"

#include <ATen/ATen.h>

#include "data/device.h"
#include "data/feature_store.h"
#include "models/method_registry.h"
#include "models/pqvae/feature_autoencoder.h"
#include "util/atomic_file.h"
#include "util/config.h"
#include "util/config_paths.h"
#include "util/error.h"

namespace semcodec {

void configure_run_threads(const RunConfig& cfg) {
  const c10::Device dev = resolve_device(cfg.train.device);
  const bool network = method_info(cfg.model.method).kind == MethodKind::network;
  configure_threads(cfg.train.threads,
                    network ? gemm_backend_for(compute_dtype(cfg.model, dev), dev) : GemmBackend::Blas);
}

ClassSplit make_run_split(const SplitConfig& s, int64_t num_classes, const std::string& source,
                          const std::string& project_dir) {
  ClassSplit split;
  if (s.mode == "seed") {
    require(s.heldout_classes < num_classes, "{}: data.split.heldout_classes = {} leaves no training class ({} classes)",
            source, s.heldout_classes, num_classes);
    split = split_by_seed(num_classes, s.heldout_classes, static_cast<uint64_t>(s.seed));
  } else if (s.mode == "files") {
    split = split_from_files(resolve_config_path(project_dir, s.train_classes_file),
                             resolve_config_path(project_dir, s.heldout_classes_file), num_classes);
  } else {  // all: train and validate on every class
    for (int64_t c = 0; c < num_classes; ++c) split.train.push_back(c);
    split.heldout = split.train;
    return split;
  }
  validate_split(split, num_classes, source);
  return split;
}

HeldoutValidator::HeldoutValidator(FeatureSet s, std::vector<int64_t> cls) : set(std::move(s)), classes(std::move(cls)) {
  if (set.has_text()) {
    classifier = "zero-shot";
    prototypes = set.class_embeddings.index_select(0, at::tensor(classes, at::kLong));
  } else {
    classifier = "nearest-class-mean";
    prototypes = class_means(set.features, set.labels, classes);
  }
  clean = score(set.features);
}

Accuracy HeldoutValidator::score(const at::Tensor& features) const {
  return prototype_accuracy(features.cpu(), set.labels, prototypes, classes);
}

nlohmann::json HeldoutValidator::metrics(const at::Tensor& recon, Accuracy& acc) const {
  acc = score(recon);
  return {{"val_classifier", classifier},
          {"val_top1", acc.top1},
          {"val_top5", acc.top5},
          {"val_clean_top1", clean.top1},
          {"val_clean_top5", clean.top5},
          {"val_mean_cosine", mean_cosine(recon.cpu(), set.features)}};
}

nlohmann::json dataset_provenance(const std::string& path, const FeatureSet& set) {
  return {{"features", path},
          {"rows", set.size()},
          {"embed_dim", set.dim()},
          {"num_classes", set.num_classes()},
          {"encoder_model", set.attrs.encoder_model},
          {"dataset", set.attrs.dataset},
          {"split", set.attrs.split},
          {"preprocessing", set.attrs.preprocessing}};
}

RunData load_run_data(const RunConfig& cfg, const std::string& source) {
  const std::string features = cfg.path(cfg.data.features);
  FeatureSet all = read_feature_file(features);
  require(all.dim() == cfg.model.embed_dim, "{}: features have D = {}, but model.embed_dim is {} (set in {})",
          features, all.dim(), cfg.model.embed_dim, source);
  ClassSplit split = make_run_split(cfg.data.split, all.num_classes(), source, cfg.project_dir);
  FeatureSet train = select_classes(all, split.train);
  require(train.size() > 0, "{}: no feature belongs to the {} training classes", features, split.train.size());
  HeldoutValidator val(stride_rows(select_classes(all, split.heldout), cfg.train.val_max_rows), split.heldout);
  require(val.set.size() > 0, "{}: no feature belongs to the {} held-out classes", features, split.heldout.size());
  return RunData{std::move(all), std::move(split), std::move(train), std::move(val)};
}

TrainResult run_outputs(const std::string& run_dir) {
  TrainResult r;
  r.run_dir = run_dir;
  ensure_dir(r.run_dir);
  r.last_checkpoint = r.run_dir + "/last.safetensors";
  r.best_checkpoint = r.run_dir + "/best.safetensors";
  r.metrics_log = r.run_dir + "/metrics.jsonl";
  return r;
}

void refuse_to_overwrite(const TrainResult& outputs, const TrainOptions& opt) {
  if (!opt.resume && !opt.overwrite && file_exists(outputs.last_checkpoint))
    fail("{}: the run directory already holds a checkpoint; pass --resume to continue it or --overwrite to start again",
         outputs.run_dir);
}

Checkpoint checkpoint_to_resume(const TrainResult& outputs, const RunConfig& cfg, const ClassSplit& split,
                                const std::string& source) {
  require(file_exists(outputs.last_checkpoint), "{}: nothing to resume (no last.safetensors)", outputs.run_dir);
  Checkpoint ck = load_checkpoint(outputs.last_checkpoint);
  require(to_json(ck.config.model) == to_json(cfg.model),
          "{}: the checkpoint was trained with a different model config than {} ({} vs {})", outputs.last_checkpoint,
          source, to_json(ck.config.model).dump(), to_json(cfg.model).dump());
  require(ck.train_classes == split.train && ck.heldout_classes == split.heldout,
          "{}: the checkpoint used a different class split than {}", outputs.last_checkpoint, source);
  return ck;
}

Checkpoint run_checkpoint(const RunConfig& cfg, const RunData& data) {
  Checkpoint ck;
  ck.config = cfg;
  ck.train_classes = data.split.train;
  ck.heldout_classes = data.split.heldout;
  ck.dataset = dataset_provenance(cfg.path(cfg.data.features), data.all);
  return ck;
}

}  // namespace semcodec
