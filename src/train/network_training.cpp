#include "train/network_training.h"

#include "train/data_parallel.h"
#include "train/distributed_sampler.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <optional>

#include "codec/checkpoint_codec.h"
#include "codec/entropy_fit.h"
#include "data/device.h"
#include "models/checkpoint.h"
#include "models/method_registry.h"
#include "models/pqvae/pqvae.h"
#include "train/adam.h"
#include "train/pqvae_objective.h"
#include "util/atomic_file.h"
#include "util/config.h"
#include "util/error.h"
#include "util/json_bounded.h"
#include "util/jsonl.h"
#include "util/progress.h"
#include "util/random.h"
#include "util/run_lock.h"

namespace semcodec {

namespace {

// Checkpoint metadata holding the metrics record of the epoch it ends.
constexpr const char* kEpochRecordKey = "epoch_metrics";

// One epoch's training sums; each rank's own until sum_over_ranks.
struct EpochSums {
  double loss = 0, distortion = 0, codebook = 0, commitment = 0;
  int64_t seen = 0, restarts = 0;
  at::Tensor codeword_counts;  // [codewords] int64: how often each codeword was chosen
  double seconds = 0;
};

// Reconstructions of `features` by the network's forward pass, in batches.
at::Tensor reconstruct(PQVAE& model, const at::Tensor& features, c10::Device dev) {
  at::NoGradGuard g;
  std::vector<at::Tensor> out;
  for (int64_t s = 0; s < features.size(0); s += 4096) {
    at::Tensor x = features.narrow(0, s, std::min<int64_t>(4096, features.size(0) - s)).to(dev);
    out.push_back(model.forward(x).reconstruction);
  }
  return at::cat(out);
}

class NetworkTrainer {
 public:
  // Everything before the first epoch: device, data, ranks, model, optimizer,
  // and either a fresh start or the state of the run's last checkpoint.
  NetworkTrainer(const RunConfig& cfg, const TrainOptions& opt);
  TrainResult run();

 private:
  void create_model_and_optimizer();
  // Adam over the model's parameters with train.lr and fresh moments.
  std::unique_ptr<Adam> new_optimizer();
  void start_or_resume();
  EpochSums train_epoch(int64_t epoch, double lr);
  void sum_over_ranks(EpochSums& sums);
  // Held-out scores and codebook health of the epoch, logged; returns the record.
  nlohmann::json validate_epoch(int64_t epoch, double lr, const EpochSums& sums, Accuracy& accuracy);
  void save_checkpoints(int64_t epoch, double top1, const nlohmann::json& record);
  void fit_entropy_tables();
  // Every rank holds rank 0's parameters and buffers after this.
  void sync_model();
  void refit_codebook();
  uint64_t seed() const { return static_cast<uint64_t>(cfg_.train.seed); }

  const RunConfig& cfg_;
  const TrainOptions& opt_;
  c10::Device dev_{c10::kCPU};
  c10::ScalarType compute_ = at::kFloat;
  std::optional<RunData> data_;
  at::Tensor train_x_;  // on the device when it fits there
  TrainResult result_;
  std::unique_ptr<DataParallel> dp_;
  bool main_rank_ = true;
  std::shared_ptr<PQVAE> model_;
  std::unique_ptr<Adam> adam_;
  std::unique_ptr<GradientReducer> reducer_;
  TrainingState st_;
  // Steps trained unquantized before the codebook is fitted (0: fitted at step 0).
  int64_t warmup_ = 0;
  int64_t steps_per_epoch_ = 0;
  std::unique_ptr<JsonlLog> log_;
  std::unique_ptr<RunDirectoryLock> lock_;  // rank 0's, for the run's lifetime
  std::string resumed_record_;  // the last epoch's metrics record, from the checkpoint resumed
};

NetworkTrainer::NetworkTrainer(const RunConfig& cfg, const TrainOptions& opt) : cfg_(cfg), opt_(opt) {
  const std::string& src = opt.config_source;
  validate(cfg, src);
  require(!cfg.data.features.empty(), "{}: data.features: no feature file given", src);
  dev_ = resolve_device(cfg.train.device, dist_env().local_rank);
  compute_ = compute_dtype(cfg.model, dev_);
  configure_run_threads(cfg);

  data_.emplace(load_run_data(cfg, src));
  const double train_bytes = static_cast<double>(data_->train.features.numel()) * 4;
  train_x_ = data_->train.features;
  if (train_bytes <= cfg.data.max_device_memory_gb * 1e9) train_x_ = train_x_.to(dev_);

  result_ = run_outputs(cfg.path(cfg.output.dir));
  if (dist_env().rank == 0) {
    lock_ = std::make_unique<RunDirectoryLock>(result_.run_dir);
    remove_stale_temporaries(result_.run_dir);
  }
  refuse_to_overwrite(result_, opt);

  // Several processes (semcodec launch, torchrun, srun): data-parallel over
  // c10d; rank 0 alone validates and writes (docs/distributed.md).
  DataParallelOptions dpo;
  dpo.timeout_seconds = cfg.train.dist_timeout_s;
  dpo.backend = cfg.train.dist_backend;
  dpo.device = dev_;
  dp_ = DataParallel::from_env(dist_env(), dpo);
  main_rank_ = !dp_ || dp_->is_main();
  if (dp_)
    require(cfg.train.batch_size >= dp_->world_size(), "{}: train.batch_size {} is smaller than the {} ranks", src,
            cfg.train.batch_size, dp_->world_size());
  create_model_and_optimizer();
  start_or_resume();

  const int64_t n = data_->train.size(), batch = cfg.train.batch_size;
  steps_per_epoch_ = (n + batch - 1) / batch;
  // A last batch with fewer rows than ranks would leave a rank without data: dropped.
  if (dp_ && n % batch != 0 && n % batch < dp_->world_size()) --steps_per_epoch_;
  if (cfg.train.max_steps_per_epoch > 0) steps_per_epoch_ = std::min(steps_per_epoch_, cfg.train.max_steps_per_epoch);
}

void NetworkTrainer::create_model_and_optimizer() {
  model_ = std::dynamic_pointer_cast<PQVAE>(make_quantizer(cfg_.model));
  require(model_ != nullptr, "{}: model.method '{}' is a network method but builds no PQ-VAE", opt_.config_source,
          cfg_.model.method);
  model_->init_weights(seed());
  model_->to(dev_);
  adam_ = new_optimizer();
  if (dp_) {
    std::vector<at::Tensor> tensors;
    for (const auto& p : model_->named_parameters()) tensors.push_back(p.value());
    const auto bucket_bytes = static_cast<int64_t>(cfg_.train.dist_bucket_mb * (1 << 20));
    reducer_ = std::make_unique<GradientReducer>(*dp_, tensors, bucket_bytes);
  }
}

std::unique_ptr<Adam> NetworkTrainer::new_optimizer() {
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (auto& p : model_->named_parameters()) params.emplace_back(p.key(), p.value());
  AdamOptions ao;
  ao.lr = cfg_.train.lr;
  ao.weight_decay = cfg_.train.weight_decay;
  ao.decoupled_weight_decay = cfg_.train.weight_decay_mode == "decoupled";
  return std::make_unique<Adam>(params, ao);
}

void NetworkTrainer::start_or_resume() {
  if (opt_.resume) {
    Checkpoint ck = checkpoint_to_resume(result_, cfg_, data_->split, opt_.config_source);
    load_module_state(*model_, ck.model, result_.last_checkpoint);
    adam_->load_state(ck.optimizer, result_.last_checkpoint);
    st_ = ck.state;
    if (auto it = ck.extra_metadata.find(kEpochRecordKey); it != ck.extra_metadata.end()) resumed_record_ = it->second;
  } else if (cfg_.model.center_features) {
    at::Tensor unit = train_x_ / train_x_.norm(2, {1}, true).clamp_min(1e-12);
    model_->set_feature_mean(unit.mean(0).to(dev_));
  }
  // The codebook is fitted once the encoder's outputs carry information: at
  // the end of the quantizer warm-up (step 0 without one). It is part of every
  // checkpoint, so a resumed run never refits it.
  warmup_ = cfg_.model.codebook_init == "uniform" ? 0 : cfg_.model.quantizer_warmup_steps;
  sync_model();
  if (!opt_.resume && warmup_ == 0) refit_codebook();
  if (main_rank_) write_resolved_config(result_.run_dir, cfg_);
  // A kill between an epoch's checkpoint and its record, or inside the
  // record, leaves the log short or torn: it is cut back to the checkpoint.
  if (main_rank_ && opt_.resume) {
    const int64_t kept = truncate_metrics_log(result_.metrics_log, st_.epochs_done);
    // Killed after the checkpoint and before its record: the record is in the checkpoint.
    if (kept < st_.epochs_done && !resumed_record_.empty())
      JsonlLog(result_.metrics_log, /*append=*/true)
          .write(parse_json_bounded(resumed_record_, result_.last_checkpoint + ": metadata 'epoch_metrics'"));
  }
  if (main_rank_) log_ = std::make_unique<JsonlLog>(result_.metrics_log, /*append=*/opt_.resume);
}

void NetworkTrainer::sync_model() {
  if (!dp_) return;
  std::vector<at::Tensor> all;
  for (const auto& p : model_->named_parameters()) all.push_back(p.value());
  for (const auto& b : model_->named_buffers()) all.push_back(b.value());
  dp_->broadcast(all);
}

// Each rank would compute its own fit: rank 0's is kept.
void NetworkTrainer::refit_codebook() {
  model_->fit_codebook(train_x_, mix_seed(seed(), 0xC0DE), st_.step);
  sync_model();
}

EpochSums NetworkTrainer::train_epoch(int64_t epoch, double lr) {
  const int64_t n = data_->train.size(), batch = cfg_.train.batch_size, lr_warmup = cfg_.train.lr_warmup_steps;
  PQModule& pq = model_->pq_module();
  const SumOverRanks sum_codebook_statistics =
      dp_ ? SumOverRanks([this](const std::vector<at::Tensor>& t) { dp_->allreduce_sum(t); }) : SumOverRanks();
  model_->train();
  const at::Tensor perm = at::tensor(random_permutation(n, mix_seed(seed(), 1000 + epoch)), at::kLong);
  EpochSums sums;
  sums.codeword_counts = at::zeros({pq.codeword_count()}, at::TensorOptions().dtype(at::kLong).device(dev_));
  const auto t0 = std::chrono::steady_clock::now();
  ProgressBar bar(fmt::format("epoch {}/{}", epoch + 1, cfg_.train.epochs), steps_per_epoch_ * batch, "samples",
                  opt_.progress && main_rank_);
  for (int64_t s = 0; s < steps_per_epoch_; ++s) {
    // With several ranks each takes its slice of the global batch (distributed_sampler.h).
    const RankSlice slice = rank_slice(n, batch, s, dp_ ? dp_->rank() : 0, dp_ ? dp_->world_size() : 1);
    const int64_t b = slice.rows();
    at::Tensor x = train_x_.index_select(0, perm.narrow(0, slice.begin, b).to(train_x_.device())).to(dev_);
    if (warmup_ > 0 && st_.step == warmup_) refit_codebook();
    const bool warming_up = st_.step < warmup_;
    if (st_.step < lr_warmup) adam_->set_lr(lr * static_cast<double>(st_.step + 1) / static_cast<double>(lr_warmup));
    if (st_.step == lr_warmup) adam_->set_lr(lr);
    adam_->zero_grad();
    PQVAEForward fwd = model_->forward(x, warming_up);
    PQVAELoss loss = pqvae_loss(x, fwd, cfg_.loss);
    require(std::isfinite(loss.distortion) && std::isfinite(loss.codebook),
            "training diverged at epoch {} step {} (loss is not finite); lower train.lr", epoch + 1, st_.step + 1);
    if (dp_) {
      // Each rank's mean loss weighted by its share of the global batch; the
      // summed gradients are then those of the global batch's mean loss.
      // Buckets of gradients are summed over ranks while backward runs.
      (loss.total * slice.share()).backward();
      reducer_->finish();
    } else {
      loss.total.backward();
    }
    adam_->step();
    ++st_.step;
    if (!warming_up) {
      sums.codeword_counts += at::bincount(pq.codeword_ids(fwd.pq.indices).reshape({-1}), {}, pq.codeword_count());
      const CodebookUpdate u =
          pq.update_after_step(fwd.latent, fwd.pq, st_.step, mix_seed(seed(), st_.step), sum_codebook_statistics);
      if (!u.parameter.empty()) adam_->reset_rows("pq." + u.parameter, u.rows);
      sums.restarts += u.restarts;
      // Usage clocks and restarts saw only this rank's rows: rank 0's state wins.
      if (dp_) {
        std::vector<at::Tensor> pq_state;
        for (const auto& t : pq.parameters()) pq_state.push_back(t);
        for (const auto& t : pq.buffers()) pq_state.push_back(t);
        dp_->broadcast(pq_state);
      }
    }
    sums.loss += loss.total.item<double>() * b;
    sums.distortion += loss.distortion * b, sums.codebook += loss.codebook * b, sums.commitment += loss.commitment * b;
    sums.seen += b;
    bar.set_postfix(fmt::format("loss {:.4f} cos {:.4f}", sums.loss / sums.seen, 1 - sums.distortion / sums.seen));
    bar.advance(slice.batch);
  }
  bar.finish();
  sums.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sums;
}

void NetworkTrainer::sum_over_ranks(EpochSums& s) {
  at::Tensor t = at::tensor({s.loss, s.distortion, s.codebook, s.commitment, static_cast<double>(s.seen),
                             static_cast<double>(s.restarts)}, at::kDouble);
  dp_->allreduce_sum({t, s.codeword_counts});
  s.loss = t[0].item<double>(), s.distortion = t[1].item<double>(), s.codebook = t[2].item<double>();
  s.commitment = t[3].item<double>(), s.seen = static_cast<int64_t>(t[4].item<double>());
  s.restarts = static_cast<int64_t>(t[5].item<double>());
}

nlohmann::json NetworkTrainer::validate_epoch(int64_t epoch, double lr, const EpochSums& s, Accuracy& acc) {
  const HeldoutValidator& val = data_->val;
  model_->eval();
  at::Tensor recon = reconstruct(*model_, val.set.features, dev_);
  const nlohmann::json val_fields = val.metrics(recon, acc);
  const double cos = val_fields["val_mean_cosine"].get<double>();
  const int64_t k = s.codeword_counts.numel();
  at::Tensor p = s.codeword_counts.to(at::kDouble).cpu();
  p = p / p.sum().clamp_min(1);
  const double entropy = -(p * at::where(p > 0, p.log(), at::zeros_like(p))).sum().item<double>();
  const int64_t dead = (s.codeword_counts == 0).sum().item<int64_t>();

  nlohmann::json rec = {{"epoch", epoch + 1},
                        {"step", st_.step},
                        {"lr", lr},
                        {"train_loss", s.loss / s.seen},
                        {"train_distortion", s.distortion / s.seen},
                        {"train_codebook_loss", s.codebook / s.seen},
                        {"train_commitment_loss", s.commitment / s.seen},
                        {"samples_per_second", s.seen / s.seconds},
                        {"codebook_perplexity", std::exp(entropy)},
                        {"codebook_used", k - dead},
                        {"codebook_dead", dead},
                        {"codebook_size", k},
                        {"dead_code_restarts", s.restarts},
                        {"raw_bits", pqvae_raw_bits(cfg_.model)},
                        {"compute_dtype", compute_ == at::kBFloat16 ? "bfloat16" : "float32"}};
  rec.update(val_fields);
  if (opt_.progress)
    fmt::print(stderr, "  val top1 {:.2f}% (clean {:.2f}%)  cos {:.4f}  codebook {}/{} used, perplexity {:.2f}\n",
               100 * acc.top1, 100 * val.clean.top1, cos, k - dead, k, std::exp(entropy));
  return rec;
}

void NetworkTrainer::save_checkpoints(int64_t epoch, double top1, const nlohmann::json& record) {
  Checkpoint ck = run_checkpoint(cfg_, *data_);
  ck.model = module_state(*model_);
  // The epoch's metrics record rides in the checkpoint: a kill between the
  // checkpoint and the log line loses nothing (start_or_resume re-appends it).
  ck.extra_metadata[kEpochRecordKey] = record.dump();
  if (top1 > st_.best_top1) {
    st_.best_top1 = top1;
    st_.best_epoch = epoch + 1;
    ck.state = st_;
    save_checkpoint(result_.best_checkpoint, ck);
  }
  ck.state = st_;
  ck.optimizer = adam_->state();
  save_checkpoint(result_.last_checkpoint, ck);
}

// Trained checkpoints carry entropy-coder tables fitted on the training
// classes, so `compress` works on them directly (docs/bitstream.md). The fit
// encodes up to kEndOfTrainingFitRows training rows per checkpoint, and only
// once when the best epoch is the last one (same weights).
void NetworkTrainer::fit_entropy_tables() {
  EntropyFitOptions fit;
  fit.device = cfg_.train.device;
  fit.progress = opt_.progress;
  fit.max_items = kEndOfTrainingFitRows;
  if (!main_rank_ || !file_exists(result_.last_checkpoint)) return;
  fit_entropy_in_file(result_.last_checkpoint, data_->train.features, fit);
  if (!file_exists(result_.best_checkpoint)) return;
  if (st_.best_epoch == st_.epochs_done)
    copy_entropy_tables(result_.last_checkpoint, result_.best_checkpoint);
  else
    fit_entropy_in_file(result_.best_checkpoint, data_->train.features, fit);
}

TrainResult NetworkTrainer::run() {
  for (int64_t epoch = st_.epochs_done; epoch < cfg_.train.epochs; ++epoch) {
    // The release builds its Adam and StepLR inside the epoch loop: each epoch
    // starts with zero moments, a restarted bias correction, and the step
    // schedule at its first epoch, so the rate never decays.
    const bool reset = cfg_.train.reset_optimizer_each_epoch;
    if (reset) adam_ = new_optimizer();
    const double decays = reset ? 0.0 : static_cast<double>(epoch / cfg_.train.lr_step_epochs);
    const double lr = cfg_.train.lr * std::pow(cfg_.train.lr_gamma, decays);
    adam_->set_lr(lr);
    EpochSums sums = train_epoch(epoch, lr);
    st_.epochs_done = epoch + 1;
    // An epoch that ends inside the warm-up is still validated (and saved)
    // quantized; every rank refits (it is a collective).
    if (warmup_ > 0 && st_.step <= warmup_) refit_codebook();
    if (dp_) {
      sum_over_ranks(sums);
      if (!main_rank_) continue;  // rank 0 validates, logs and writes checkpoints
    }
    Accuracy acc;
    result_.last_epoch = validate_epoch(epoch, lr, sums, acc);
    // The record follows the checkpoints it describes (truncate_metrics_log).
    save_checkpoints(epoch, acc.top1, result_.last_epoch);
    log_->write(result_.last_epoch);
  }
  fit_entropy_tables();
  result_.best_top1 = st_.best_top1;
  result_.best_epoch = st_.best_epoch;
  result_.main_rank = main_rank_;
  return result_;
}

}  // namespace

TrainResult train_network(const RunConfig& cfg, const TrainOptions& opt) { return NetworkTrainer(cfg, opt).run(); }

}  // namespace semcodec
