// Typed configuration of a training run: the data, the model, the loss, the
// optimization and the outputs. Each struct lists its fields once in visit()
// (util/config_fields.h); reading, writing, `--set` overrides and the
// documentation walk that list (util/config.h). A checkpoint records the
// config of the run that made it, so the config sits beside the models.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/model_config.h"
#include "util/config_fields.h"

namespace semcodec {

struct SplitConfig {
  std::string mode = "seed";           // seed: random class split; files: class-index lists; all: no split
  int64_t seed = 0;
  int64_t heldout_classes = 200;       // mode=seed: number of held-out classes
  std::string train_classes_file;      // mode=files: .npy / .txt / .yaml list of class indices
  std::string heldout_classes_file;
  template <class V> void visit(V& v) {
    v.field("mode", mode, "how classes are split: seed | files | all", Limits::one_of({"seed", "files", "all"}));
    v.field("seed", seed, "seed of the random class split (mode=seed)", Limits::at_least(0));
    v.field("heldout_classes", heldout_classes, "number of held-out classes (mode=seed)", Limits::at_least(1));
    v.field("train_classes_file", train_classes_file, "class-index list for training (mode=files)", {});
    v.field("heldout_classes_file", heldout_classes_file, "class-index list held out (mode=files)", {});
  }
};

struct DataConfig {
  std::string features;                // feature file (HDF5) for training and validation
  SplitConfig split;
  double max_device_memory_gb = 4.0;   // load the whole set on the device below this size, else stream
  template <class V> void visit(V& v) {
    v.field("features", features, "feature file (.h5) to train on", {});
    v.section("split", split);
    v.field("max_device_memory_gb", max_device_memory_gb, "keep the set on the device when it fits in this", Limits::range(0, 1e6));
  }
};

struct LossConfig {
  double alpha = 10.0;  // weight of (1 - cos)
  double beta = 0.25;   // commitment weight
  template <class V> void visit(V& v) {
    v.field("alpha", alpha, "weight of the cosine distortion term", Limits::range(0, 1e6));
    v.field("beta", beta, "weight of the commitment term", Limits::range(0, 1e6));
  }
};

struct TrainConfig {
  int64_t epochs = 30;
  int64_t batch_size = 64;
  double lr = 1e-3;
  double weight_decay = 5e-4;
  std::string weight_decay_mode = "decoupled";  // decoupled (AdamW) | l2 (torch.optim.Adam, the release)
  int64_t lr_step_epochs = 20;
  double lr_gamma = 0.1;
  int64_t lr_warmup_steps = 100;  // linear ramp: without it lr 1e-3 kills the ReLUs on real CLIP features
  int64_t seed = 0;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int64_t threads = 0;          // CPU intra-op threads, 0 = all cores
  int64_t max_steps_per_epoch = 0;  // 0 = full epochs
  int64_t val_max_rows = 0;         // 0 = validate on every held-out row
  double dist_timeout_s = 300;      // collectives of multi-process runs (docs/distributed.md)
  double dist_bucket_mb = 25;       // gradient all-reduce bucket size (MiB)
  std::string dist_backend = "auto";  // auto | gloo | nccl
  bool reset_optimizer_each_epoch = false;  // the release's loop: fresh Adam + StepLR every epoch
  template <class V> void visit(V& v) {
    v.field("epochs", epochs, "training epochs", Limits::range(1, 1e7));
    v.field("batch_size", batch_size, "samples per step", Limits::range(1, 1e7));
    v.field("lr", lr, "Adam learning rate", Limits::range(0, 10));
    v.field("weight_decay", weight_decay, "Adam weight decay", Limits::range(0, 10));
    v.field("weight_decay_mode", weight_decay_mode,
            "decoupled (AdamW) | l2 (the release's Adam; with lr >= 1e-3 it kills the network)",
            Limits::one_of({"decoupled", "l2"}));
    v.field("lr_step_epochs", lr_step_epochs, "decay the learning rate every this many epochs", Limits::range(1, 1e7));
    v.field("lr_gamma", lr_gamma, "learning-rate decay factor", Limits::range(0, 1));
    v.field("lr_warmup_steps", lr_warmup_steps, "ramp the learning rate linearly from 0 over this many first steps",
            Limits::range(0, 1e12));
    v.field("seed", seed, "seed of initialization, shuffling and restarts", Limits::at_least(0));
    v.field("device", device, "auto | cpu | cuda | cuda:N", {});
    v.field("threads", threads, "CPU threads (0 = all cores)", Limits::range(0, 4096));
    v.field("max_steps_per_epoch", max_steps_per_epoch, "cap on steps per epoch (0 = whole epoch)", Limits::range(0, 1e12));
    v.field("val_max_rows", val_max_rows,
            "per-epoch validation on at most this many held-out rows, an even stride (0 = all; eval always uses all)",
            Limits::range(0, 1e12));
    v.field("dist_timeout_s", dist_timeout_s,
            "multi-process runs: seconds a rank waits for the others before failing (rendezvous and every collective)",
            Limits::range(1, 1e7));
    v.field("dist_bucket_mb", dist_bucket_mb,
            "multi-process runs: MiB of gradients per all-reduce bucket; a bucket is sent as soon as backward has "
            "produced all of its gradients, overlapping communication with the rest of backward",
            Limits::range(0.001, 4096));
    v.field("dist_backend", dist_backend,
            "multi-process runs: c10d backend; auto = nccl when train.device is CUDA and the build has NCCL, else "
            "gloo (CUDA tensors then go through host copies)",
            Limits::one_of({"auto", "gloo", "nccl"}));
    v.field("reset_optimizer_each_epoch", reset_optimizer_each_epoch,
            "re-create Adam and its step schedule at the start of every epoch, as the paper's release does: Adam's "
            "moments and bias correction restart each epoch and the rate stays train.lr (lr_step_epochs and lr_gamma "
            "never apply); configs/paper_recipe.yaml",
            Limits{}.added_later());
  }
};

struct OutputConfig {
  std::string dir = "runs/default";
  template <class V> void visit(V& v) { v.field("dir", dir, "run directory (checkpoints, logs, resolved config)", {}); }
};

struct RunConfig {
  DataConfig data;
  ModelConfig model;
  LossConfig loss;
  TrainConfig train;
  OutputConfig output;
  // The folder the relative paths above resolve against (util/config_paths.h):
  // the config file's project directory, "" = the working directory. Not a
  // key: never written, never part of a cell's hash.
  std::string project_dir;
  // A path field of this config (data.features, the split files, output.dir)
  // as the working directory sees it.
  std::string path(const std::string& p) const;
  template <class V> void visit(V& v) {
    v.section("data", data);
    v.section("model", model);
    v.section("loss", loss);
    v.section("train", train);
    v.section("output", output);
  }
};

// Cross-field checks (single fields are checked by their Limits while
// reading): model.d_sub divides model.latent_channels (for pqvae_shared, the
// 25 x latent_channels latent values), data.split.mode files
// names both files, and the method's own checks (validate_method_keys). Every
// config loader calls it; data.features may stay empty because the CLI can
// fill it in later.
void validate(const RunConfig& config, const std::string& source);

// The keys whose values are paths (data.features, data.split.*_file, output.dir).
bool is_path_key(const std::string& key);

// Command-line `--set key=value` overrides with every relative path value made
// absolute when `project_dir` is not the working directory, so that it keeps
// meaning what it meant where it was typed.
std::vector<std::string> anchor_path_overrides(std::vector<std::string> overrides, const std::string& project_dir);

// load_config<RunConfig>(file, overrides) with project_dir set from the file;
// `overrides` come from the command line (anchor_path_overrides).
RunConfig load_run_config(const std::string& file, const std::vector<std::string>& overrides = {});

}  // namespace semcodec
