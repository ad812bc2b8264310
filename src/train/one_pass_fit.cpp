#include "train/one_pass_fit.h"

#include "codec/entropy_fit.h"

#include <ATen/ATen.h>

#include <chrono>

#include "data/device.h"
#include "eval/classifiers.h"
#include "models/checkpoint.h"
#include "models/method_registry.h"
#include "train/run_setup.h"
#include "util/atomic_file.h"
#include "util/config.h"
#include "util/error.h"
#include "util/jsonl.h"
#include "util/run_lock.h"

namespace semcodec {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

at::Tensor reconstruct_in_batches(Quantizer& q, const at::Tensor& x, int64_t batch) {
  std::vector<at::Tensor> out;
  for (int64_t s = 0; s < x.size(0); s += batch)
    out.push_back(q.decode(q.encode(x.narrow(0, s, std::min(batch, x.size(0) - s)))).to(at::kCPU, at::kFloat));
  if (out.empty()) return at::empty({0, q.embed_dim()}, at::kFloat);
  return at::cat(out);
}

nlohmann::json slot_usage(const Quantizer& q, const at::Tensor& indices) {
  const int64_t slots = q.slots();
  int64_t total = 0, kmax = 0;
  for (int64_t s = 0; s < slots; ++s) total += q.alphabet_size(s), kmax = std::max(kmax, q.alphabet_size(s));
  if (slots * kmax > (int64_t{1} << 24) || indices.size(0) == 0) return nullptr;
  at::Tensor ids = indices.to(at::kCPU, at::kLong) + at::arange(slots, at::kLong).unsqueeze(0) * kmax;
  at::Tensor counts = at::bincount(ids.reshape({-1}), {}, slots * kmax).view({slots, kmax}).to(at::kDouble);
  at::Tensor p = counts / counts.sum(1, true).clamp_min(1);
  at::Tensor entropy = -(p * at::where(p > 0, p.log(), at::zeros_like(p))).sum(1);
  const int64_t used = (counts > 0).sum().item<int64_t>();
  return {{"codebook_perplexity", entropy.exp().mean().item<double>()},  // mean over slots
          {"codebook_used", used},
          {"codebook_dead", total - used},
          {"codebook_size", total}};
}

TrainResult fit_in_one_pass(const RunConfig& cfg, const TrainOptions& opt) {
  const std::string& src = opt.config_source;
  validate(cfg, src);
  validate_method_keys(cfg.model, src);
  require(method_info(cfg.model.method).kind == MethodKind::fitted, "{}: model.method '{}' is trained, not fitted", src,
          cfg.model.method);
  require(!cfg.data.features.empty(), "{}: data.features: no feature file given", src);
  configure_run_threads(cfg);

  RunData data = load_run_data(cfg, src);
  const ClassSplit& split = data.split;
  const FeatureSet& train = data.train;
  const HeldoutValidator& val = data.val;

  TrainResult result = run_outputs(cfg.path(cfg.output.dir));
  const RunDirectoryLock lock(result.run_dir);
  remove_stale_temporaries(result.run_dir);
  if (opt.resume) {
    // A fit is one step: a finished run with the same model and split is done.
    const Checkpoint ck = checkpoint_to_resume(result, cfg, split, src);
    result.best_top1 = ck.state.best_top1;
    result.best_epoch = ck.state.best_epoch;
    return result;
  }
  refuse_to_overwrite(result, opt);

  std::shared_ptr<FittedQuantizer> q = make_fitted_quantizer(cfg.model);
  write_resolved_config(result.run_dir, cfg);
  if (opt.progress)
    fmt::print(stderr, "fitting {} on {} training rows ({} classes)...\n", q->name(), train.size(), split.train.size());
  auto t0 = Clock::now();
  q->fit(train.features);
  const double fit_seconds = seconds_since(t0);

  const at::Tensor probe =
      train.features.index_select(0, at::tensor(strided_row_indices(train.size(), 20000), at::kLong));
  t0 = Clock::now();
  at::Tensor train_idx = q->encode(probe);
  const double encode_seconds = seconds_since(t0);
  t0 = Clock::now();
  at::Tensor train_recon = q->decode(train_idx);
  const double decode_seconds = seconds_since(t0);
  at::Tensor recon = reconstruct_in_batches(*q, val.set.features);
  Accuracy acc;
  const nlohmann::json val_fields = val.metrics(recon, acc);
  const double cos = val_fields["val_mean_cosine"].get<double>();

  nlohmann::json rec = {{"epoch", 1},
                        {"step", 0},
                        {"method", q->name()},
                        {"train_rows", train.size()},
                        {"fit_seconds", fit_seconds},
                        {"encode_items_per_second", probe.size(0) / std::max(encode_seconds, 1e-9)},
                        {"decode_items_per_second", probe.size(0) / std::max(decode_seconds, 1e-9)},
                        {"train_mean_cosine", mean_cosine(train_recon, probe)},
                        {"codebook_perplexity", nullptr},
                        {"codebook_used", nullptr},
                        {"codebook_dead", nullptr},
                        {"codebook_size", nullptr},
                        {"raw_bits", q->raw_bits()}};
  rec.update(val_fields);
  nlohmann::json usage = slot_usage(*q, train_idx);
  if (!usage.is_null()) rec.update(usage);
  JsonlLog log(result.metrics_log, /*append=*/false);
  log.write(rec);
  if (opt.progress)
    fmt::print(stderr, "  fitted in {:.2f} s; val top1 {:.2f}% (clean {:.2f}%)  cos {:.4f}  {} raw bits\n",
               fit_seconds, 100 * acc.top1, 100 * val.clean.top1, cos, q->raw_bits());

  Checkpoint ck = run_checkpoint(cfg, data);
  ck.model = q->state();
  ck.state.epochs_done = 1;
  ck.state.best_top1 = acc.top1;
  ck.state.best_epoch = 1;
  // Entropy-coder tables, so `compress` and `eval --via-bitstream` work on the run.
  EntropyFitOptions fit;
  fit.progress = opt.progress;
  fit.max_items = kEndOfTrainingFitRows;
  fit_checkpoint_entropy(ck, *q, train.features, fit);
  save_checkpoint(result.best_checkpoint, ck);
  save_checkpoint(result.last_checkpoint, ck);
  result.last_epoch = rec;
  result.best_top1 = acc.top1;
  result.best_epoch = 1;
  return result;
}

}  // namespace semcodec
