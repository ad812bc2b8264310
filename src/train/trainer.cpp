#include "train/trainer.h"

#include "train/data_parallel.h"
#include "train/distributed_sampler.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "codec/checkpoint_codec.h"
#include "codec/entropy_fit.h"
#include "data/class_split.h"
#include "data/device.h"
#include "eval/classifiers.h"
#include "models/checkpoint.h"
#include "models/method_registry.h"
#include "models/pqvae/pqvae_kmeans.h"
#include "models/pqvae/pqvae_shared.h"
#include "train/adam.h"
#include "train/fit_quantizer.h"
#include "train/pqvae_objective.h"
#include "train/run_setup.h"
#include "util/atomic_file.h"
#include "util/config.h"
#include "util/error.h"
#include "util/fmt_shape.h"
#include "util/jsonl.h"
#include "util/progress.h"
#include "util/random.h"

namespace semcodec {

namespace {

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

// What differs between the two auto-encoders: PQVAE-shared learns its one
// codebook by gradient (codebook loss, Adam) and restarts dead codewords;
// the k-means PQ baseline moves its per-sub-space codebooks by EMA.
int64_t subvectors_per_row(PQVAEShared& m) { return m.slots(); }
int64_t subvectors_per_row(PQVAEKMeans& m) { return m.slots() / m.pq->groups(); }
int64_t total_codewords(PQVAEShared& m) { return m.config().codebook_size; }
int64_t total_codewords(PQVAEKMeans& m) { return m.pq->groups() * m.config().codebook_size; }
at::Tensor codeword_ids(PQVAEShared&, const at::Tensor& indices) { return indices.reshape({-1}); }
at::Tensor codeword_ids(PQVAEKMeans& m, const at::Tensor& indices) { return m.pq->global_ids(indices).reshape({-1}); }

// Encoder latents [rows, 25, c] of a random sample of training rows, enough
// for `samples` sub-vectors per codebook and at least 4 per codeword.
template <class Model>
at::Tensor sample_latents(Model& model, const at::Tensor& features, int64_t samples, uint64_t seed, c10::Device dev) {
  at::NoGradGuard g;
  const int64_t per_row = subvectors_per_row(model);
  int64_t want = std::max(samples, 4 * model.config().codebook_size);
  int64_t rows = std::min<int64_t>(features.size(0), (want + per_row - 1) / per_row);
  at::Tensor idx = permutation(features.size(0), seed).narrow(0, 0, rows);
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < rows; s += 4096) {
    at::Tensor x = features.index_select(0, idx.narrow(0, s, std::min<int64_t>(4096, rows - s)).to(features.device()));
    parts.push_back(model.forward(x.to(dev), /*bypass_quantizer=*/true).latent);
  }
  return at::cat(parts);
}

void fit_codebook(PQVAEShared& model, const at::Tensor& train_x, const ModelConfig& mc, uint64_t seed, int64_t step,
                  c10::Device dev) {
  if (mc.codebook_init == "uniform") {
    model.pq->init_uniform(seed);
  } else {
    at::Tensor sub = model.pq->subvectors(sample_latents(model, train_x, mc.init_samples, seed, dev));
    model.pq->init_from_data(sub, mc.codebook_init, seed);
    model.pq->last_used.fill_(step);  // no codeword counts as dead yet
  }
}
void fit_codebook(PQVAEKMeans& model, const at::Tensor& train_x, const ModelConfig& mc, uint64_t seed, int64_t step,
                  c10::Device dev) {
  if (mc.codebook_init == "uniform") {
    model.pq->init_uniform(seed);
  } else {
    model.pq->init_from_latents(sample_latents(model, train_x, mc.init_samples, seed, dev), mc.codebook_init, seed);
  }
  model.pq->last_used.fill_(step);
}

// After the optimizer step; returns the number of re-seeded codewords.
// With several ranks (dp), the k-means EMA sums its batch statistics over all
// ranks first, so the codebooks move as they would with the whole global batch.
int64_t update_codebook(PQVAEShared& model, const PQVAEForward& fwd, const RunConfig& cfg, int64_t step, Adam& adam,
                        DataParallel*) {
  if (!cfg.model.dead_code_restart) return 0;
  auto ids = model.pq->restart_dead_codes(fwd.pq.indices, fwd.pq.subvectors, step, cfg.model.dead_code_after_steps,
                                          mix_seed(static_cast<uint64_t>(cfg.train.seed), step));
  adam.reset_rows("pq.codebook", ids);
  return static_cast<int64_t>(ids.size());
}
int64_t update_codebook(PQVAEKMeans& model, const PQVAEForward& fwd, const RunConfig& cfg, int64_t step, Adam&,
                        DataParallel* dp) {
  auto [counts, sums] = model.pq->batch_statistics(fwd.latent, fwd.pq.indices);
  if (dp) dp->allreduce_sum({counts, sums});
  const EmaCodebookOptions& ema = cfg.model.options<EmaCodebookOptions>();
  model.pq->apply_ema(counts, sums, ema.ema_decay, ema.ema_epsilon);
  if (!cfg.model.dead_code_restart) return 0;
  return model.pq->restart_dead_codes(fwd.latent, fwd.pq.indices, step, cfg.model.dead_code_after_steps,
                                      mix_seed(static_cast<uint64_t>(cfg.train.seed), step));
}

template <class Model>
at::Tensor reconstruct(Model& model, const at::Tensor& features, c10::Device dev) {
  at::NoGradGuard g;
  std::vector<at::Tensor> out;
  for (int64_t s = 0; s < features.size(0); s += 4096) {
    at::Tensor x = features.narrow(0, s, std::min<int64_t>(4096, features.size(0) - s)).to(dev);
    out.push_back(model.forward(x).reconstruction);
  }
  return at::cat(out);
}

// The training loop of both auto-encoders (PQVAEShared, PQVAEKMeans).
template <class Model>
TrainResult train_autoencoder(const RunConfig& cfg, const TrainOptions& opt) {
  const std::string& src = opt.config_source;
  validate(cfg, src);
  require(!cfg.data.features.empty(), "{}: data.features: no feature file given", src);
  const c10::Device dev = resolve_device(cfg.train.device, dist_env().local_rank);
  const c10::ScalarType compute = compute_dtype(cfg.model, dev);
  configure_threads(cfg.train.threads, compute == at::kBFloat16 && dev.is_cpu() ? GemmBackend::OneDnn : GemmBackend::Blas);

  RunData data = load_run_data(cfg, src);
  const FeatureSet& all = data.all;
  const ClassSplit& split = data.split;
  const FeatureSet& train = data.train;
  const HeldoutValidator& val = data.val;

  // Keep the training set on the device when it fits; else copy each batch.
  const double train_bytes = static_cast<double>(train.features.numel()) * 4;
  at::Tensor train_x = train.features;
  if (train_bytes <= cfg.data.max_device_memory_gb * 1e9) train_x = train_x.to(dev);

  TrainResult result = run_outputs(cfg.output.dir);
  if (!opt.resume && !opt.overwrite && file_exists(result.last_checkpoint))
    fail("{}: the run directory already holds a checkpoint; pass --resume to continue it or --overwrite to start again",
         result.run_dir);

  // Several processes (semcodec launch, torchrun, srun): data-parallel over
  // c10d; rank 0 alone validates and writes (docs/distributed.md).
  DataParallelOptions dpo;
  dpo.timeout_seconds = cfg.train.dist_timeout_s;
  dpo.backend = cfg.train.dist_backend;
  dpo.device = dev;
  std::unique_ptr<DataParallel> dp = DataParallel::from_env(dist_env(), dpo);
  const bool main_rank = !dp || dp->is_main();
  if (dp)
    require(cfg.train.batch_size >= dp->world_size(), "{}: train.batch_size {} is smaller than the {} ranks", src,
            cfg.train.batch_size, dp->world_size());
  auto model = std::make_shared<Model>(cfg.model);
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
  std::unique_ptr<GradientReducer> reducer;
  if (dp) {
    std::vector<at::Tensor> tensors;
    for (const auto& p : params) tensors.push_back(p.second);
    const auto bucket_bytes = static_cast<int64_t>(cfg.train.dist_bucket_mb * (1 << 20));
    reducer = std::make_unique<GradientReducer>(*dp, tensors, bucket_bytes);
  }

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
  // Every rank holds rank 0's parameters and buffers after this (and after
  // any codebook refit or restart, which each rank would compute on its own).
  auto sync_model = [&] {
    if (!dp) return;
    std::vector<at::Tensor> all;
    for (const auto& p : model->named_parameters()) all.push_back(p.value());
    for (const auto& b : model->named_buffers()) all.push_back(b.value());
    dp->broadcast(all);
  };
  auto refit_codebook = [&] {
    fit_codebook(*model, train_x, cfg.model, mix_seed(static_cast<uint64_t>(cfg.train.seed), 0xC0DE), st.step, dev);
    sync_model();
  };
  sync_model();
  if (!opt.resume && warmup == 0) refit_codebook();
  if (main_rank) write_resolved_config(result.run_dir, cfg);
  std::unique_ptr<JsonlLog> log;
  if (main_rank) log = std::make_unique<JsonlLog>(result.metrics_log, /*append=*/opt.resume);

  const int64_t n = train.size(), batch = cfg.train.batch_size, k = total_codewords(*model);
  int64_t steps_per_epoch = (n + batch - 1) / batch;
  // A last batch with fewer rows than ranks would leave a rank without data: dropped.
  if (dp && n % batch != 0 && n % batch < dp->world_size()) --steps_per_epoch;
  if (cfg.train.max_steps_per_epoch > 0) steps_per_epoch = std::min(steps_per_epoch, cfg.train.max_steps_per_epoch);
  const at::Tensor train_labels = train.labels;

  for (int64_t epoch = st.epochs_done; epoch < cfg.train.epochs; ++epoch) {
    const double lr = cfg.train.lr * std::pow(cfg.train.lr_gamma, static_cast<double>(epoch / cfg.train.lr_step_epochs));
    adam.set_lr(lr);
    const int64_t lr_warmup = cfg.train.lr_warmup_steps;
    model->train();
    const at::Tensor perm = permutation(n, mix_seed(static_cast<uint64_t>(cfg.train.seed), 1000 + epoch));
    at::Tensor counts = at::zeros({k}, at::TensorOptions().dtype(at::kLong).device(dev));
    double sum_loss = 0, sum_dist = 0, sum_cb = 0, sum_commit = 0;
    int64_t restarts = 0, seen = 0;
    auto t0 = std::chrono::steady_clock::now();
    ProgressBar bar(fmt::format("epoch {}/{}", epoch + 1, cfg.train.epochs), steps_per_epoch * batch, "samples",
                    opt.progress && main_rank);
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      // With several ranks each takes its slice of the global batch (distributed_sampler.h).
      const RankSlice slice = rank_slice(n, batch, s, dp ? dp->rank() : 0, dp ? dp->world_size() : 1);
      const int64_t b = slice.rows();
      at::Tensor x = train_x.index_select(0, perm.narrow(0, slice.begin, b).to(train_x.device())).to(dev);
      if (warmup > 0 && st.step == warmup) refit_codebook();
      const bool warming_up = st.step < warmup;
      if (st.step < lr_warmup) adam.set_lr(lr * static_cast<double>(st.step + 1) / static_cast<double>(lr_warmup));
      if (st.step == lr_warmup) adam.set_lr(lr);
      adam.zero_grad();
      PQVAEForward fwd = model->forward(x, warming_up);
      PQVAELoss loss = pqvae_loss(x, fwd, cfg.loss);
      require(std::isfinite(loss.distortion) && std::isfinite(loss.codebook),
              "training diverged at epoch {} step {} (loss is not finite); lower train.lr", epoch + 1, st.step + 1);
      if (dp) {
        // Each rank's mean loss weighted by its share of the global batch; the
        // summed gradients are then those of the global batch's mean loss.
        // Buckets of gradients are summed over ranks while backward runs.
        (loss.total * slice.share()).backward();
        reducer->finish();
      } else {
        loss.total.backward();
      }
      adam.step();
      ++st.step;
      if (!warming_up) {
        counts += at::bincount(codeword_ids(*model, fwd.pq.indices), {}, k);
        restarts += update_codebook(*model, fwd, cfg, st.step, adam, dp.get());
        // Usage clocks and restarts saw only this rank's rows: rank 0's state wins.
        if (dp) {
          std::vector<at::Tensor> pq_state;
          for (const auto& t : model->pq->parameters()) pq_state.push_back(t);
          for (const auto& t : model->pq->buffers()) pq_state.push_back(t);
          dp->broadcast(pq_state);
        }
      }
      sum_loss += loss.total.item<double>() * b;
      sum_dist += loss.distortion * b, sum_cb += loss.codebook * b, sum_commit += loss.commitment * b;
      seen += b;
      bar.set_postfix(fmt::format("loss {:.4f} cos {:.4f}", sum_loss / seen, 1 - sum_dist / seen));
      bar.advance(slice.batch);
    }
    bar.finish();
    const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    st.epochs_done = epoch + 1;
    // An epoch that ends inside the warm-up is still validated (and saved)
    // quantized; every rank refits (it is a collective).
    if (warmup > 0 && st.step <= warmup) refit_codebook();
    if (dp) {
      at::Tensor sums = at::tensor({sum_loss, sum_dist, sum_cb, sum_commit, static_cast<double>(seen),
                                    static_cast<double>(restarts)}, at::kDouble);
      dp->allreduce_sum({sums, counts});
      sum_loss = sums[0].item<double>(), sum_dist = sums[1].item<double>(), sum_cb = sums[2].item<double>();
      sum_commit = sums[3].item<double>(), seen = static_cast<int64_t>(sums[4].item<double>());
      restarts = static_cast<int64_t>(sums[5].item<double>());
      if (!main_rank) continue;  // rank 0 validates, logs and writes checkpoints
    }

    model->eval();
    at::Tensor recon = reconstruct(*model, val.set.features, dev);
    Accuracy acc = val.score(recon);
    const double cos = mean_cosine(recon.cpu(), val.set.features);
    at::Tensor p = counts.to(at::kDouble).cpu();
    p = p / p.sum().clamp_min(1);
    const double entropy = -(p * at::where(p > 0, p.log(), at::zeros_like(p))).sum().item<double>();
    const int64_t dead = (counts == 0).sum().item<int64_t>();

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
                          {"raw_bits", pqvae_raw_bits(cfg.model)},
                          {"compute_dtype", compute == at::kBFloat16 ? "bfloat16" : "float32"}};
    log->write(rec);
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
  // Trained checkpoints carry entropy-coder tables fitted on the training
  // classes, so `compress` works on them directly (docs/bitstream.md). The fit encodes up to kEndOfTrainingFitRows training rows per checkpoint,
  // and only once when the best epoch is the last one (same weights).
  EntropyFitOptions fit;
  fit.device = cfg.train.device;
  fit.progress = opt.progress;
  fit.max_items = kEndOfTrainingFitRows;
  if (main_rank && file_exists(result.last_checkpoint)) {
    fit_entropy_in_file(result.last_checkpoint, train.features, fit);
    if (file_exists(result.best_checkpoint)) {
      if (st.best_epoch == st.epochs_done)
        copy_entropy_tables(result.last_checkpoint, result.best_checkpoint);
      else
        fit_entropy_in_file(result.best_checkpoint, train.features, fit);
    }
  }
  result.best_top1 = st.best_top1;
  result.best_epoch = st.best_epoch;
  result.main_rank = main_rank;
  return result;
}

}  // namespace

TrainResult run_outputs(const std::string& run_dir) {
  TrainResult r;
  r.run_dir = run_dir;
  ensure_dir(r.run_dir);
  r.last_checkpoint = r.run_dir + "/last.safetensors";
  r.best_checkpoint = r.run_dir + "/best.safetensors";
  r.metrics_log = r.run_dir + "/metrics.jsonl";
  return r;
}

TrainResult train_pqvae(const RunConfig& cfg, const TrainOptions& opt) {
  require(cfg.model.method == "pqvae_shared", "{}: model.method is '{}', not pqvae_shared", opt.config_source,
          cfg.model.method);
  return train_autoencoder<PQVAEShared>(cfg, opt);
}

TrainResult train_run(const RunConfig& cfg, const TrainOptions& opt) {
  validate_method_keys(cfg.model, opt.config_source);
  if (method_info(cfg.model.method).kind == MethodKind::fitted) return fit_quantizer_run(cfg, opt);
  if (cfg.model.method == "vqvae_kmeans_pq") return train_autoencoder<PQVAEKMeans>(cfg, opt);
  return train_autoencoder<PQVAEShared>(cfg, opt);
}

}  // namespace semcodec
