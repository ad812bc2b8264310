#include "models/pqvae/pqvae_kmeans.h"

#include <ATen/ATen.h>

#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

PQVAEKMeans::PQVAEKMeans(const ModelConfig& cfg) : config_(cfg) {
  require(cfg.method == "vqvae_kmeans_pq", "model.method '{}' is not vqvae_kmeans_pq", cfg.method);
  encoder = register_module("encoder", FeatureEncoder(cfg));
  pq = register_module("pq", KMeansPQ(cfg.latent_channels, cfg.d_sub, cfg.codebook_size, kLatentPositions,
                                      cfg.kmeans_per_position));
  decoder = register_module("decoder", FeatureDecoder(cfg));
  feature_mean = register_buffer("feature_mean", at::zeros({cfg.embed_dim}));
}

void PQVAEKMeans::set_feature_mean(const at::Tensor& mean) {
  require(mean.dim() == 1 && mean.size(0) == config_.embed_dim, "feature mean must be [{}], got {}", config_.embed_dim,
          mean.sizes());
  at::NoGradGuard g;
  feature_mean.copy_(mean);
}

at::Tensor PQVAEKMeans::offset() const { return config_.center_features ? feature_mean : at::Tensor(); }

PQVAEForward PQVAEKMeans::forward(const at::Tensor& x, bool bypass_quantizer) {
  require(x.dim() == 2 && x.size(1) == config_.embed_dim, "VQ-VAE k-means PQ expects [N, {}] features, got {}",
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
    out.pq = pq->forward(out.latent);
  }
  out.reconstruction = decoder->forward(out.pq.quantized, offset());
  return out;
}

at::Tensor PQVAEKMeans::encode(const at::Tensor& x) {
  at::NoGradGuard g;
  require(x.dim() == 2 && x.size(1) == config_.embed_dim, "encode expects [N, {}] features, got {}",
          config_.embed_dim, x.sizes());
  return pq->forward(encoder->forward(x.to(pq->codebook.device(), at::kFloat), offset())).indices;
}

at::Tensor PQVAEKMeans::decode(const at::Tensor& indices) {
  at::NoGradGuard g;
  require(indices.dim() == 2 && indices.size(1) == slots(), "decode expects [N, {}] indices, got {}", slots(),
          indices.sizes());
  require(indices.numel() == 0 || (indices.min().item<int64_t>() >= 0 &&
                                   indices.max().item<int64_t>() < config_.codebook_size),
          "decode: indices outside [0, {})", config_.codebook_size);
  return decoder->forward(pq->lookup(indices), offset());
}

}  // namespace semcodec
