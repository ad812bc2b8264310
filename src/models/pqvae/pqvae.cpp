#include "models/pqvae/pqvae.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <functional>
#include <vector>

#include "util/error.h"
#include "util/fmt_shape.h"
#include "util/random.h"

namespace semcodec {

PQVAE::PQVAE(const ModelConfig& cfg, std::shared_ptr<PQModule> pq, std::string method, std::string title)
    : config_(cfg), method_(std::move(method)), title_(std::move(title)) {
  require(cfg.method == method_, "model.method '{}' is not {}", cfg.method, method_);
  encoder = register_module("encoder", FeatureEncoder(cfg));
  pq_ = register_module("pq", std::move(pq));
  pq_->slots(kLatentPositions);  // Error now, not at the first batch, when d_sub does not cut the latent evenly
  decoder = register_module("decoder", FeatureDecoder(cfg));
  feature_mean = register_buffer("feature_mean", at::zeros({cfg.embed_dim}));
}

void PQVAE::set_feature_mean(const at::Tensor& mean) {
  require(mean.dim() == 1 && mean.size(0) == config_.embed_dim, "feature mean must be [{}], got {}", config_.embed_dim,
          mean.sizes());
  at::NoGradGuard g;
  feature_mean.copy_(mean);
}

// Undefined when centering is off, so the paper's configuration runs the
// network exactly as published.
at::Tensor PQVAE::offset() const { return config_.center_features ? feature_mean : at::Tensor(); }

PQVAEForward PQVAE::forward(const at::Tensor& x, bool bypass_quantizer) {
  require(x.dim() == 2 && x.size(1) == config_.embed_dim, "{} expects [N, {}] features, got {}", title_,
          config_.embed_dim, x.sizes());
  PQVAEForward out;
  out.latent = encoder->forward(x, offset());
  if (bypass_quantizer) {
    out.pq.quantized = out.latent;
    out.pq.indices = at::empty({x.size(0), 0}, x.options().dtype(at::kLong));
    out.pq.codebook_loss = at::zeros({}, x.options());
    out.pq.commitment_loss = at::zeros({}, x.options());
    out.pq.subvectors = at::empty({0, config_.d_sub}, x.options());
  } else {
    out.pq = pq_->forward(out.latent);
  }
  out.reconstruction = decoder->forward(out.pq.quantized, offset());
  return out;
}

namespace {
// Inference runs in chunks of this many rows. A 3x3 grid convolution gathers
// 9 taps per position, so its GEMM operand is 9x the activation: ~15 MB at 64
// rows, ~240 MB at 1,024, where every product streams from DRAM and a large
// batch ran slower per item than a training step (bench_pqvae --infer-batch).
// Rows are independent, so chunking changes no result bit.
constexpr int64_t kInferenceChunk = 32;

at::Tensor in_chunks(const at::Tensor& rows, const std::function<at::Tensor(const at::Tensor&)>& f) {
  const int64_t n = rows.size(0);
  if (n <= kInferenceChunk) return f(rows);
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < n; s += kInferenceChunk) parts.push_back(f(rows.narrow(0, s, std::min(kInferenceChunk, n - s))));
  return at::cat(parts);
}
}  // namespace

at::Tensor PQVAE::encode(const at::Tensor& x) {
  at::NoGradGuard g;
  require(x.dim() == 2 && x.size(1) == config_.embed_dim, "encode expects [N, {}] features, got {}",
          config_.embed_dim, x.sizes());
  const at::Tensor rows = x.to(feature_mean.device(), at::kFloat);
  return in_chunks(rows, [&](const at::Tensor& part) { return pq_->forward(encoder->forward(part, offset())).indices; });
}

at::Tensor PQVAE::decode(const at::Tensor& indices) {
  at::NoGradGuard g;
  require(indices.dim() == 2 && indices.size(1) == slots(), "decode expects [N, {}] indices, got {}", slots(),
          indices.sizes());
  require(indices.numel() == 0 || (indices.min().item<int64_t>() >= 0 &&
                                   indices.max().item<int64_t>() < config_.codebook_size),
          "decode: indices outside [0, {})", config_.codebook_size);
  return in_chunks(indices, [&](const at::Tensor& part) {
    return decoder->forward(pq_->lookup(part, kLatentPositions), offset());
  });
}

std::map<std::string, at::Tensor> PQVAE::decoding_state() {
  std::map<std::string, at::Tensor> out;
  auto keep = [](const std::string& name) { return name == "pq.codebook" || name.rfind("decoder.", 0) == 0; };
  for (const auto& p : named_parameters())
    if (keep(p.key())) out[p.key()] = p.value();
  for (const auto& b : named_buffers())
    if (keep(b.key())) out[b.key()] = b.value();
  if (config_.center_features) out["feature_mean"] = feature_mean;
  return out;
}

void PQVAE::init_weights(uint64_t seed) {
  at::NoGradGuard g;
  SplitMix64 rng(mix_seed(seed, 0x1D17));
  std::map<std::string, double> bound_of_module;
  for (auto& p : named_parameters()) {
    const std::string& name = p.key();
    if (name.rfind("pq.", 0) == 0) continue;
    at::Tensor t = p.value();
    std::string module = name.substr(0, name.rfind('.'));
    double bound;
    if (t.dim() >= 2) {  // fan_in = size(1) * kernel area
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

void PQVAE::fit_codebook(const at::Tensor& features, uint64_t seed, int64_t step) {
  const std::string& init = config_.codebook_init;
  at::Tensor latents;
  if (init != "uniform") {
    at::NoGradGuard g;
    const int64_t per_row = pq_->subvectors_per_codebook(kLatentPositions);
    const int64_t want = std::max(config_.init_samples, 4 * config_.codebook_size);
    const int64_t rows = std::min<int64_t>(features.size(0), (want + per_row - 1) / per_row);
    const at::Tensor pick =
        at::tensor(random_permutation(features.size(0), seed), at::kLong).narrow(0, 0, rows).to(features.device());
    std::vector<at::Tensor> parts;
    for (int64_t s = 0; s < rows; s += 4096) {
      const at::Tensor x = features.index_select(0, pick.narrow(0, s, std::min<int64_t>(4096, rows - s)));
      parts.push_back(forward(x.to(feature_mean.device()), /*bypass_quantizer=*/true).latent);
    }
    latents = at::cat(parts);
  }
  pq_->fit(latents, init, seed, step);
}

int64_t pqvae_weight_elements_lower_bound(const ModelConfig& c) {
  // Encoder and decoder mirror each other: embed -> hidden -> body (3x3
  // transposed), residual blocks (body x residual, 3x3 and 1x1), body ->
  // latent (3x3); computed in long double so that hostile sizes saturate.
  const long double e = c.embed_dim, h = c.hidden_channels, b = c.body_channels, l = c.latent_channels,
                    r = c.residual_channels, layers = c.residual_layers;
  const long double one_side = 9 * (e * h + h * b + b * l) + layers * (9 * b * r + b * r);
  const long double both = 2 * one_side;
  return both >= static_cast<long double>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(both);
}

int64_t pqvae_raw_bits(const ModelConfig& cfg) {
  int64_t bits_per_index = 0;
  while ((int64_t{1} << bits_per_index) < cfg.codebook_size) ++bits_per_index;
  return kLatentPositions * cfg.latent_channels / cfg.d_sub * bits_per_index;
}

}  // namespace semcodec
