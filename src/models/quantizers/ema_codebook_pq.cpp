#include "models/quantizers/ema_codebook_pq.h"

#include <ATen/ATen.h>

#include "models/quantizers/kmeans.h"
#include "models/quantizers/nearest_codeword.h"
#include "util/error.h"
#include "util/fmt_shape.h"
#include "util/random.h"

namespace semcodec {

EmaCodebookPQImpl::EmaCodebookPQImpl(int64_t channels, int64_t d_sub, int64_t codebook_size, int64_t positions,
                                     const EmaCodebookOptions& options, DeadCodeOptions dead_codes)
    : channels_(channels), d_sub_(d_sub), codebook_size_(codebook_size), positions_(positions),
      per_position_(options.per_position), ema_decay_(options.ema_decay), ema_epsilon_(options.ema_epsilon),
      dead_codes_(dead_codes) {
  require(d_sub > 0 && channels % d_sub == 0, "d_sub {} must divide the latent channels {}", d_sub, channels);
  require(codebook_size >= 2 && codebook_size <= 65536, "codebook size {} outside [2, 65536]", codebook_size);
  require(positions >= 1, "k-means PQ: {} positions", positions);
  groups_ = per_position_ ? positions * subspaces() : subspaces();
  codebook = register_buffer("codebook", at::zeros({groups_, codebook_size, d_sub}));
  ema_count = register_buffer("ema_count", at::ones({groups_, codebook_size}));
  ema_sum = register_buffer("ema_sum", at::zeros({groups_, codebook_size, d_sub}));
  last_used = register_buffer("last_used", at::zeros({groups_, codebook_size}, at::kLong));
  init_uniform(0);
}

at::Tensor EmaCodebookPQImpl::grouped(const at::Tensor& z) const {
  require(z.dim() == 3 && z.size(1) == positions_ && z.size(2) == channels_,
          "k-means PQ expects [N, {}, {}] latents, got {}", positions_, channels_, z.sizes());
  const int64_t n = z.size(0);
  if (per_position_) return z.reshape({n, groups_, d_sub_}).transpose(0, 1);                   // [P*S, N, d]
  return z.reshape({n * positions_, subspaces(), d_sub_}).transpose(0, 1);  // [S, N*P, d]
}

at::Tensor EmaCodebookPQImpl::ungroup(const at::Tensor& idx, int64_t n) const {
  if (per_position_) return idx.t().contiguous();  // [N, P*S]
  return idx.view({subspaces(), n * positions_}).t().reshape({n, positions_ * subspaces()}).contiguous();
}

at::Tensor EmaCodebookPQImpl::codeword_ids(const at::Tensor& indices) const {
  const int64_t slots = positions_ * subspaces();
  at::Tensor slot = at::arange(slots, indices.options().dtype(at::kLong));
  at::Tensor group = per_position_ ? slot : slot.remainder(subspaces());
  return indices.to(at::kLong) + group.unsqueeze(0) * codebook_size_;
}

at::Tensor EmaCodebookPQImpl::lookup(const at::Tensor& indices, int64_t positions) const {
  require(positions == positions_, "k-means PQ: {} positions, the codebooks were built for {}", positions, positions_);
  require(indices.dim() == 2 && indices.size(1) == positions_ * subspaces(), "expected indices [N, {}], got {}",
          positions_ * subspaces(), indices.sizes());
  at::Tensor ids = codeword_ids(indices.to(codebook.device())).reshape({-1});
  at::Tensor q = codebook.reshape({groups_ * codebook_size_, d_sub_}).index_select(0, ids);
  return q.view({indices.size(0), positions_, channels_});
}

PQForward EmaCodebookPQImpl::forward(const at::Tensor& z) {
  const int64_t n = z.size(0);
  at::Tensor g = grouped(z.detach());
  std::vector<at::Tensor> idx;
  for (int64_t k = 0; k < groups_; ++k) idx.push_back(nearest_codeword(g[k], codebook[k]));
  PQForward out;
  out.indices = ungroup(at::stack(idx), n);
  at::Tensor q = lookup(out.indices, positions_);
  out.codebook_loss = at::zeros({}, z.options());
  out.commitment_loss = (z - q.detach()).pow(2).mean();
  out.quantized = z + (q - z).detach();
  out.subvectors = z.detach().reshape({-1, d_sub_});
  return out;
}

void EmaCodebookPQImpl::reset_ema() {
  ema_count.fill_(1.0);
  ema_sum.copy_(codebook);
}

void EmaCodebookPQImpl::init_uniform(uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<float> v(static_cast<size_t>(codebook.numel()));
  for (auto& x : v) x = static_cast<float>(2.0 * rng.uniform() - 1.0);
  at::NoGradGuard g;
  codebook.copy_(at::tensor(v).view(codebook.sizes()));
  reset_ema();
  last_used.zero_();
}

void EmaCodebookPQImpl::init_from_latents(const at::Tensor& z, const std::string& method, uint64_t seed) {
  at::NoGradGuard no_grad;
  if (method == "uniform") return init_uniform(seed);
  require(method == "kmeans" || method == "sample", "unknown codebook init '{}' (expected kmeans, sample or uniform)",
          method);
  at::Tensor g = grouped(z);
  require(g.size(1) > 0, "codebook init: no latents");
  for (int64_t k = 0; k < groups_; ++k) {
    KMeansOptions opt;
    opt.seed = mix_seed(seed, static_cast<uint64_t>(k));
    if (method == "sample") opt.iterations = 0, opt.kmeanspp_max_k = 0;
    codebook[k].copy_(kmeans(g[k].contiguous(), codebook_size_, opt));
  }
  reset_ema();
  last_used.zero_();
}

std::pair<at::Tensor, at::Tensor> EmaCodebookPQImpl::batch_statistics(const at::Tensor& z, const at::Tensor& indices) const {
  at::NoGradGuard no_grad;
  const int64_t k = codebook_size_;
  at::Tensor x = z.detach().to(codebook.dtype()).reshape({-1, d_sub_});        // slot order
  at::Tensor ids = codeword_ids(indices.to(codebook.device())).reshape({-1});  // same order
  at::Tensor counts = at::zeros({groups_ * k}, codebook.options()).index_add_(0, ids, at::ones_like(ids, codebook.options()));
  at::Tensor sums = at::zeros({groups_ * k, d_sub_}, codebook.options()).index_add_(0, ids, x);
  return {counts.view({groups_, k}), sums.view({groups_, k, d_sub_})};
}

void EmaCodebookPQImpl::apply_ema(const at::Tensor& counts, const at::Tensor& sums, double decay, double epsilon) {
  at::NoGradGuard no_grad;
  const int64_t k = codebook_size_;
  ema_count.mul_(decay).add_(counts, 1 - decay);
  ema_sum.mul_(decay).add_(sums, 1 - decay);
  at::Tensor total = ema_count.sum(1, true);
  at::Tensor smoothed = (ema_count + epsilon) / (total + k * epsilon) * total;
  codebook.copy_(ema_sum / smoothed.unsqueeze(2));
}

void EmaCodebookPQImpl::ema_update(const at::Tensor& z, const at::Tensor& indices, double decay, double epsilon) {
  const auto [counts, sums] = batch_statistics(z, indices);
  apply_ema(counts, sums, decay, epsilon);
}

int64_t EmaCodebookPQImpl::restart_dead_codes(const at::Tensor& z, const at::Tensor& indices, int64_t step,
                                         int64_t after_steps, uint64_t seed) {
  at::NoGradGuard no_grad;
  at::Tensor ids = codeword_ids(indices.to(last_used.device())).reshape({-1});
  at::Tensor flat_used = last_used.view({-1});
  flat_used.index_fill_(0, ids, step);
  at::Tensor dead = ((step - flat_used) > after_steps).nonzero().view({-1}).cpu();
  if (dead.numel() == 0) return 0;
  at::Tensor g = grouped(z.detach()).to(codebook.device());
  const int64_t rows = g.size(1);
  if (rows == 0) return 0;
  SplitMix64 rng(seed);
  at::Tensor flat_cb = codebook.view({-1, d_sub_}), flat_count = ema_count.view({-1}), flat_sum = ema_sum.view({-1, d_sub_});
  const int64_t* d = dead.data_ptr<int64_t>();
  for (int64_t i = 0; i < dead.numel(); ++i) {
    const int64_t id = d[i], group = id / codebook_size_;
    std::vector<float> jitter(static_cast<size_t>(d_sub_));
    const int64_t row = static_cast<int64_t>(rng.below(static_cast<uint64_t>(rows)));
    for (auto& v : jitter) v = static_cast<float>(1e-3 * rng.normal());
    at::Tensor src = g[group][row] + at::tensor(jitter).to(codebook.device());
    flat_cb[id].copy_(src);
    flat_sum[id].copy_(src);
    flat_count[id].fill_(1.0);
    flat_used[id].fill_(step);
  }
  return dead.numel();
}

void EmaCodebookPQImpl::fit(const at::Tensor& latents, const std::string& init, uint64_t seed, int64_t step) {
  if (init == "uniform")
    init_uniform(seed);
  else
    init_from_latents(latents, init, seed);
  last_used.fill_(step);
}

CodebookUpdate EmaCodebookPQImpl::update_after_step(const at::Tensor& latents, const PQForward& quantized, int64_t step,
                                                    uint64_t seed, const SumOverRanks& sum_over_ranks) {
  // Every rank moves its codebooks as the whole global batch would.
  auto [counts, sums] = batch_statistics(latents, quantized.indices);
  if (sum_over_ranks) sum_over_ranks({counts, sums});
  apply_ema(counts, sums, ema_decay_, ema_epsilon_);
  CodebookUpdate u;
  if (dead_codes_.enabled)
    u.restarts = restart_dead_codes(latents, quantized.indices, step, dead_codes_.after_steps, seed);
  return u;
}

}  // namespace semcodec
