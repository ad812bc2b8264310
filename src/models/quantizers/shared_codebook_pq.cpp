#include "models/quantizers/shared_codebook_pq.h"

#include <ATen/ATen.h>

#include "models/quantizers/kmeans.h"
#include "models/quantizers/nearest_codeword.h"
#include "util/error.h"
#include "util/fmt_shape.h"
#include "util/random.h"

namespace semcodec {

SharedCodebookPQImpl::SharedCodebookPQImpl(int64_t channels, int64_t d_sub, int64_t codebook_size,
                                           DeadCodeOptions dead_codes)
    : channels_(channels), d_sub_(d_sub), codebook_size_(codebook_size), dead_codes_(dead_codes) {
  require(d_sub > 0 && channels > 0, "d_sub {} and latent channels {} must be positive", d_sub, channels);
  require(codebook_size >= 2 && codebook_size <= 65536, "codebook size {} outside [2, 65536]", codebook_size);
  codebook = register_parameter("codebook", at::zeros({codebook_size, d_sub}));
  last_used = register_buffer("last_used", at::zeros({codebook_size}, at::kLong));
  init_uniform(0);
}

int64_t SharedCodebookPQImpl::slots(int64_t positions) const {
  require((positions * channels_) % d_sub_ == 0, "d_sub {} does not divide the latent channels {} or the {} x {} latent values",
          d_sub_, channels_, positions, channels_);
  return positions * channels_ / d_sub_;
}

at::Tensor SharedCodebookPQImpl::subvectors(const at::Tensor& z) const {
  require(z.dim() == 3 && z.size(2) == channels_, "quantizer expects [N, P, {}] latents, got {}", channels_, z.sizes());
  slots(z.size(1));  // checks that d_sub cuts an item's latent evenly
  return z.reshape({-1, d_sub_});  // position-major, then channel: consecutive chunks of the flattened latent
}

at::Tensor SharedCodebookPQImpl::lookup(const at::Tensor& indices, int64_t positions) const {
  require(indices.dim() == 2 && indices.size(1) == slots(positions), "expected indices [N, {}], got {}",
          slots(positions), indices.sizes());
  at::Tensor q = codebook.index_select(0, indices.reshape({-1}).to(codebook.device(), at::kLong));
  return q.view({indices.size(0), positions, channels_});
}

PQForward SharedCodebookPQImpl::forward(const at::Tensor& z) {
  const int64_t n = z.size(0), positions = z.size(1);
  at::Tensor flat = subvectors(z);
  at::Tensor idx = nearest_codeword(flat.detach(), codebook.detach());
  at::Tensor q = codebook.index_select(0, idx);
  PQForward out;
  out.codebook_loss = (q - flat.detach()).pow(2).mean();
  out.commitment_loss = (flat - q.detach()).pow(2).mean();
  at::Tensor q_st = flat + (q - flat).detach();
  out.quantized = q_st.view({n, positions, channels_});
  out.indices = idx.view({n, slots(positions)});
  out.subvectors = flat.detach();
  return out;
}

void SharedCodebookPQImpl::init_uniform(uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<float> v(static_cast<size_t>(codebook_size_ * d_sub_));
  for (auto& x : v) x = static_cast<float>(2.0 * rng.uniform() - 1.0);
  at::NoGradGuard g;
  codebook.copy_(at::tensor(v).view({codebook_size_, d_sub_}));
}

void SharedCodebookPQImpl::init_from_data(const at::Tensor& sub, const std::string& method, uint64_t seed) {
  require(sub.dim() == 2 && sub.size(1) == d_sub_ && sub.size(0) > 0, "codebook init: bad sub-vectors {}", sub.sizes());
  at::NoGradGuard g;
  if (method == "uniform") {
    init_uniform(seed);
  } else if (method == "kmeans") {
    KMeansOptions opt;
    opt.seed = seed;
    codebook.copy_(kmeans(sub, codebook_size_, opt));
  } else if (method == "sample") {
    KMeansOptions opt;
    opt.seed = seed;
    opt.iterations = 0;
    opt.kmeanspp_max_k = 0;
    codebook.copy_(kmeans(sub, codebook_size_, opt));
  } else {
    fail("unknown codebook init '{}' (expected kmeans, sample or uniform)", method);
  }
  last_used.zero_();
}

std::vector<int64_t> SharedCodebookPQImpl::restart_dead_codes(const at::Tensor& indices, const at::Tensor& recent,
                                                              int64_t step, int64_t after_steps, uint64_t seed) {
  at::NoGradGuard g;
  last_used.index_fill_(0, indices.reshape({-1}).to(last_used.device()), step);
  at::Tensor dead = ((step - last_used) > after_steps).nonzero().view({-1}).cpu();
  std::vector<int64_t> ids(dead.data_ptr<int64_t>(), dead.data_ptr<int64_t>() + dead.numel());
  if (ids.empty() || recent.size(0) == 0) return {};
  SplitMix64 rng(seed);
  std::vector<int64_t> rows;
  std::vector<float> jitter;
  for (size_t i = 0; i < ids.size(); ++i) {
    rows.push_back(static_cast<int64_t>(rng.below(recent.size(0))));
    for (int64_t j = 0; j < d_sub_; ++j) jitter.push_back(static_cast<float>(1e-3 * rng.normal()));
  }
  at::Tensor src = recent.index_select(0, at::tensor(rows, at::kLong).to(recent.device())).to(codebook.dtype());
  src += at::tensor(jitter).view({static_cast<int64_t>(ids.size()), d_sub_}).to(src.device());
  at::Tensor id_t = dead.to(codebook.device());
  codebook.index_copy_(0, id_t, src);
  last_used.index_fill_(0, id_t, step);
  return ids;
}

void SharedCodebookPQImpl::fit(const at::Tensor& latents, const std::string& init, uint64_t seed, int64_t step) {
  if (init == "uniform")
    init_uniform(seed);
  else
    init_from_data(subvectors(latents), init, seed);
  last_used.fill_(step);  // no codeword counts as dead yet
}

CodebookUpdate SharedCodebookPQImpl::update_after_step(const at::Tensor&, const PQForward& quantized, int64_t step,
                                                       uint64_t seed, const SumOverRanks&) {
  CodebookUpdate u;
  if (!dead_codes_.enabled) return u;
  u.parameter = "codebook";
  u.rows = restart_dead_codes(quantized.indices, quantized.subvectors, step, dead_codes_.after_steps, seed);
  u.restarts = static_cast<int64_t>(u.rows.size());
  return u;
}

}  // namespace semcodec
