#include "train/trainer.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "data/class_split.h"
#include "data/device.h"
#include "data/feature_store.h"
#include "eval/classifiers.h"
#include "models/pqvae/pqvae_shared.h"
#include "train/adam.h"
#include "train/checkpoint.h"
#include "train/pqvae_objective.h"
#include "util/atomic_file.h"
#include "util/config.h"
#include "util/error.h"
#include "util/fmt_shape.h"
#include "util/jsonl.h"
#include "util/progress.h"
#include "util/random.h"

namespace semcodec {

namespace {

ClassSplit make_split(const SplitConfig& s, int64_t num_classes, const std::string& source) {
  ClassSplit split;
  if (s.mode == "seed") {
    require(s.heldout_classes < num_classes, "{}: data.split.heldout_classes = {} leaves no training class ({} classes)",
            source, s.heldout_classes, num_classes);
    split = split_by_seed(num_classes, s.heldout_classes, static_cast<uint64_t>(s.seed));
  } else if (s.mode == "files") {
    split = split_from_files(s.train_classes_file, s.heldout_classes_file, num_classes);
  } else {  // all: train and validate on every class
    for (int64_t c = 0; c < num_classes; ++c) split.train.push_back(c);
    split.heldout = split.train;
    return split;
  }
  validate_split(split, num_classes, source);
  return split;
}

// PyTorch's default conv initialization (uniform with bound 1/sqrt(fan_in),
// fan_in = size(1) * kernel area) drawn from our own generator, so a seed gives
// the same network on every LibTorch version.
void init_weights(torch::nn::Module& model, uint64_t seed) {
  at::NoGradGuard g;
  SplitMix64 rng(mix_seed(seed, 0x1D17));
  std::map<std::string, double> bound_of_module;
  for (auto& p : model.named_parameters()) {
    const std::string& name = p.key();
    if (name == "pq.codebook") continue;
    at::Tensor t = p.value();
    std::string module = name.substr(0, name.rfind('.'));
    double bound;
    if (t.dim() >= 2) {
      double fan_in = static_cast<double>(t.numel() / t.size(0));
      bound = 1.0 / std::sqrt(fan_in);
      bound_of_module[module] = bound;
    } else {
      auto it = bound_of_module.find(module);
      bound = it != bound_of_module.end() ? it->second : 1.0 / std::sqrt(static_cast<double>(t.numel()));
    }
    std::vector<float> v(static_cast<size_t>(t.numel()));
    for (auto& x : v) x = static_cast<float>((2 * rng.uniform() - 1) * bound);
    t.copy_(at::tensor(v).view(t.sizes()));
  }
}

at::Tensor permutation(int64_t n, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng.below(static_cast<uint64_t>(i + 1))]);
  return at::tensor(p, at::kLong);
}

// Encoder sub-vectors of a random sample of training rows, enough for
// `samples` sub-vectors and at least 4 per codeword.
at::Tensor sample_subvectors(PQVAEShared& model, const at::Tensor& features, int64_t samples, uint64_t seed,
                             c10::Device dev) {
  at::NoGradGuard g;
  const int64_t per_row = model.slots();
  int64_t want = std::max(samples, 4 * model.config().codebook_size);
  int64_t rows = std::min<int64_t>(features.size(0), (want + per_row - 1) / per_row);
  at::Tensor idx = permutation(features.size(0), seed).narrow(0, 0, rows);
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < rows; s += 4096) {
    at::Tensor x = features.index_select(0, idx.narrow(0, s, std::min<int64_t>(4096, rows - s)).to(features.device()));
    parts.push_back(model.pq->subvectors(model.forward(x.to(dev), /*bypass_quantizer=*/true).latent));
  }
  return at::cat(parts);
}

at::Tensor reconstruct(PQVAEShared& model, const at::Tensor& features, c10::Device dev) {
  at::NoGradGuard g;
  std::vector<at::Tensor> out;
  for (int64_t s = 0; s < features.size(0); s += 4096) {
    at::Tensor x = features.narrow(0, s, std::min<int64_t>(4096, features.size(0) - s)).to(dev);
    out.push_back(model.forward(x).reconstruction);
  }
  return at::cat(out);
}

struct Validator {
  FeatureSet set;
  std::vector<int64_t> classes;
  at::Tensor prototypes;  // text embeddings or clean class means of the held-out classes
  std::string classifier;
  Accuracy clean;

  Validator(FeatureSet s, std::vector<int64_t> cls) : set(std::move(s)), classes(std::move(cls)) {
    if (set.has_text()) {
      classifier = "zero-shot";
      prototypes = set.class_embeddings.index_select(0, at::tensor(classes, at::kLong));
    } else {
      classifier = "nearest-class-mean";
      prototypes = class_means(set.features, set.labels, classes);
    }
    clean = score(set.features);
  }
  Accuracy score(const at::Tensor& features) const {
    return prototype_accuracy(features.cpu(), set.labels, prototypes, classes);
  }
};

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

}  // namespace

TrainResult train_pqvae(const RunConfig& cfg, const TrainOptions& opt) {
  const std::string& src = opt.config_source;
  validate(cfg, src);
  require(!cfg.data.features.empty(), "{}: data.features: no feature file given", src);
  configure_threads(cfg.train.threads);
  const c10::Device dev = resolve_device(cfg.train.device);

  FeatureSet all = read_feature_file(cfg.data.features);
  require(all.dim() == cfg.model.embed_dim, "{}: features have D = {}, but model.embed_dim is {} (set in {})",
          cfg.data.features, all.dim(), cfg.model.embed_dim, src);
  const ClassSplit split = make_split(cfg.data.split, all.num_classes(), src);
  FeatureSet train = select_classes(all, split.train);
  require(train.size() > 0, "{}: no feature belongs to the {} training classes", cfg.data.features, split.train.size());
  Validator val(select_classes(all, split.heldout), split.heldout);
  require(val.set.size() > 0, "{}: no feature belongs to the {} held-out classes", cfg.data.features,
          split.heldout.size());

  // Keep the training set on the device when it fits; else copy each batch.
  const double train_bytes = static_cast<double>(train.features.numel()) * 4;
  at::Tensor train_x = train.features;
  if (train_bytes <= cfg.data.max_device_memory_gb * 1e9) train_x = train_x.to(dev);

  TrainResult result;
  result.run_dir = cfg.output.dir;
  ensure_dir(result.run_dir);
  result.last_checkpoint = result.run_dir + "/last.safetensors";
  result.best_checkpoint = result.run_dir + "/best.safetensors";
  result.metrics_log = result.run_dir + "/metrics.jsonl";
  if (!opt.resume && !opt.overwrite && file_exists(result.last_checkpoint))
    fail("{}: the run directory already holds a checkpoint; pass --resume to continue it or --overwrite to start again",
         result.run_dir);

  auto model = std::make_shared<PQVAEShared>(cfg.model);
  init_weights(*model, static_cast<uint64_t>(cfg.train.seed));
  model->to(dev);
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
  AdamOptions ao;
  ao.lr = cfg.train.lr;
  ao.weight_decay = cfg.train.weight_decay;
  ao.decoupled_weight_decay = cfg.train.weight_decay_mode == "decoupled";
  Adam adam(params, ao);
  TrainingState st;

  if (opt.resume) {
    require(file_exists(result.last_checkpoint), "{}: nothing to resume (no last.safetensors)", result.run_dir);
    Checkpoint ck = load_checkpoint(result.last_checkpoint);
    require(to_json(ck.config.model) == to_json(cfg.model),
            "{}: the checkpoint was trained with a different model config than {} ({} vs {})", result.last_checkpoint,
            src, to_json(ck.config.model).dump(), to_json(cfg.model).dump());
    require(ck.train_classes == split.train && ck.heldout_classes == split.heldout,
            "{}: the checkpoint used a different class split than {}", result.last_checkpoint, src);
    load_module_state(*model, ck.model, result.last_checkpoint);
    adam.load_state(ck.optimizer, result.last_checkpoint);
    st = ck.state;
  } else {
    if (cfg.model.center_features) {
      at::Tensor unit = train_x / train_x.norm(2, {1}, true).clamp_min(1e-12);
      model->set_feature_mean(unit.mean(0).to(dev));
    }
  }
  // The codebook is fitted once the encoder's outputs carry information: at
  // the end of the quantizer warm-up (step 0 without one). It is part of every
  // checkpoint, so a resumed run never refits it.
  const int64_t warmup = cfg.model.codebook_init == "uniform" ? 0 : cfg.model.quantizer_warmup_steps;
  auto fit_codebook = [&] {
    const uint64_t seed = mix_seed(static_cast<uint64_t>(cfg.train.seed), 0xC0DE);
    if (cfg.model.codebook_init == "uniform") {
      model->pq->init_uniform(seed);
    } else {
      at::Tensor sub = sample_subvectors(*model, train_x, cfg.model.init_samples, seed, dev);
      model->pq->init_from_data(sub, cfg.model.codebook_init, seed);
      model->pq->last_used.fill_(st.step);  // no codeword counts as dead yet
    }
  };
  if (!opt.resume && warmup == 0) fit_codebook();
  write_resolved_config(result.run_dir, cfg);
  JsonlLog log(result.metrics_log, /*append=*/opt.resume);

  const int64_t n = train.size(), batch = cfg.train.batch_size, k = cfg.model.codebook_size;
  int64_t steps_per_epoch = (n + batch - 1) / batch;
  if (cfg.train.max_steps_per_epoch > 0) steps_per_epoch = std::min(steps_per_epoch, cfg.train.max_steps_per_epoch);
  const at::Tensor train_labels = train.labels;

  for (int64_t epoch = st.epochs_done; epoch < cfg.train.epochs; ++epoch) {
    const double lr = cfg.train.lr * std::pow(cfg.train.lr_gamma, static_cast<double>(epoch / cfg.train.lr_step_epochs));
    adam.set_lr(lr);
    model->train();
    const at::Tensor perm = permutation(n, mix_seed(static_cast<uint64_t>(cfg.train.seed), 1000 + epoch));
    at::Tensor counts = at::zeros({k}, at::TensorOptions().dtype(at::kLong).device(dev));
    double sum_loss = 0, sum_dist = 0, sum_cb = 0, sum_commit = 0;
    int64_t restarts = 0, seen = 0;
    auto t0 = std::chrono::steady_clock::now();
    ProgressBar bar(fmt::format("epoch {}/{}", epoch + 1, cfg.train.epochs), steps_per_epoch * batch, "samples",
                    opt.progress);
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      const int64_t b = std::min(batch, n - s * batch);
      at::Tensor x = train_x.index_select(0, perm.narrow(0, s * batch, b).to(train_x.device())).to(dev);
      if (warmup > 0 && st.step == warmup) fit_codebook();
      const bool warming_up = st.step < warmup;
      adam.zero_grad();
      PQVAEForward fwd = model->forward(x, warming_up);
      PQVAELoss loss = pqvae_loss(x, fwd, cfg.loss);
      require(std::isfinite(loss.distortion) && std::isfinite(loss.codebook),
              "training diverged at epoch {} step {} (loss is not finite); lower train.lr", epoch + 1, st.step + 1);
      loss.total.backward();
      adam.step();
      ++st.step;
      if (!warming_up) counts += at::bincount(fwd.pq.indices.reshape({-1}), {}, k);
      if (cfg.model.dead_code_restart && !warming_up) {
        auto ids = model->pq->restart_dead_codes(fwd.pq.indices, fwd.pq.subvectors, st.step,
                                                 cfg.model.dead_code_after_steps,
                                                 mix_seed(static_cast<uint64_t>(cfg.train.seed), st.step));
        adam.reset_rows("pq.codebook", ids);
        restarts += static_cast<int64_t>(ids.size());
      }
      sum_loss += loss.total.item<double>() * b;
      sum_dist += loss.distortion * b, sum_cb += loss.codebook * b, sum_commit += loss.commitment * b;
      seen += b;
      bar.set_postfix(fmt::format("loss {:.4f} cos {:.4f}", sum_loss / seen, 1 - sum_dist / seen));
      bar.advance(b);
    }
    bar.finish();
    const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // An epoch that ends inside the warm-up is still validated (and saved) quantized.
    if (warmup > 0 && st.step <= warmup) fit_codebook();
    model->eval();
    at::Tensor recon = reconstruct(*model, val.set.features, dev);
    Accuracy acc = val.score(recon);
    const double cos = mean_cosine(recon.cpu(), val.set.features);
    at::Tensor p = counts.to(at::kDouble).cpu();
    p = p / p.sum().clamp_min(1);
    const double entropy = -(p * at::where(p > 0, p.log(), at::zeros_like(p))).sum().item<double>();
    const int64_t dead = (counts == 0).sum().item<int64_t>();

    st.epochs_done = epoch + 1;
    nlohmann::json rec = {{"epoch", epoch + 1},
                          {"step", st.step},
                          {"lr", lr},
                          {"train_loss", sum_loss / seen},
                          {"train_distortion", sum_dist / seen},
                          {"train_codebook_loss", sum_cb / seen},
                          {"train_commitment_loss", sum_commit / seen},
                          {"samples_per_second", seen / train_seconds},
                          {"val_classifier", val.classifier},
                          {"val_top1", acc.top1},
                          {"val_top5", acc.top5},
                          {"val_clean_top1", val.clean.top1},
                          {"val_clean_top5", val.clean.top5},
                          {"val_mean_cosine", cos},
                          {"codebook_perplexity", std::exp(entropy)},
                          {"codebook_used", k - dead},
                          {"codebook_dead", dead},
                          {"codebook_size", k},
                          {"dead_code_restarts", restarts},
                          {"raw_bits", pqvae_raw_bits(cfg.model)}};
    log.write(rec);
    if (opt.progress)
      fmt::print(stderr, "  val top1 {:.2f}% (clean {:.2f}%)  cos {:.4f}  codebook {}/{} used, perplexity {:.2f}\n",
                 100 * acc.top1, 100 * val.clean.top1, cos, k - dead, k, std::exp(entropy));

    Checkpoint ck;
    ck.config = cfg;
    ck.train_classes = split.train;
    ck.heldout_classes = split.heldout;
    ck.dataset = dataset_provenance(cfg.data.features, all);
    ck.model = module_state(*model);
    if (acc.top1 > st.best_top1) {
      st.best_top1 = acc.top1;
      st.best_epoch = epoch + 1;
      ck.state = st;
      save_checkpoint(result.best_checkpoint, ck);
    }
    ck.state = st;
    ck.optimizer = adam.state();
    save_checkpoint(result.last_checkpoint, ck);
    result.last_epoch = rec;
  }
  result.best_top1 = st.best_top1;
  result.best_epoch = st.best_epoch;
  return result;
}

}  // namespace semcodec
