#include "models/pqvae/pqvae.h"

#include <ATen/ATen.h>

#include "models/quantizers/kmeans_pq.h"
#include "models/quantizers/shared_codebook_pq.h"
#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

namespace {
// What differs between the two PQ modules: the method they implement, how
// they are built from the config and how indices become codewords.
template <class PQModule>
struct PQKind;

template <>
struct PQKind<SharedCodebookPQ> {
  static constexpr const char* method = "pqvae_shared";
  static constexpr const char* title = "PQVAE-shared";
  static SharedCodebookPQ make(const ModelConfig& c) {
    return SharedCodebookPQ(c.latent_channels, c.d_sub, c.codebook_size);
  }
  static at::Tensor lookup(const SharedCodebookPQ& pq, const at::Tensor& idx) {
    return pq->lookup(idx, kLatentPositions);
  }
};

template <>
struct PQKind<KMeansPQ> {
  static constexpr const char* method = "vqvae_kmeans_pq";
  static constexpr const char* title = "VQ-VAE k-means PQ";
  static KMeansPQ make(const ModelConfig& c) {
    return KMeansPQ(c.latent_channels, c.d_sub, c.codebook_size, kLatentPositions,
                    c.options<EmaCodebookOptions>().per_position);
  }
  static at::Tensor lookup(const KMeansPQ& pq, const at::Tensor& idx) { return pq->lookup(idx); }
};
}  // namespace

template <class PQModule>
PQVAE<PQModule>::PQVAE(const ModelConfig& cfg) : config_(cfg) {
  require(cfg.method == PQKind<PQModule>::method, "model.method '{}' is not {}", cfg.method,
          PQKind<PQModule>::method);
  encoder = register_module("encoder", FeatureEncoder(cfg));
  pq = register_module("pq", PQKind<PQModule>::make(cfg));
  decoder = register_module("decoder", FeatureDecoder(cfg));
  feature_mean = register_buffer("feature_mean", at::zeros({cfg.embed_dim}));
}

template <class PQModule>
std::string PQVAE<PQModule>::name() const {
  return PQKind<PQModule>::method;
}

template <class PQModule>
void PQVAE<PQModule>::set_feature_mean(const at::Tensor& mean) {
  require(mean.dim() == 1 && mean.size(0) == config_.embed_dim, "feature mean must be [{}], got {}", config_.embed_dim,
          mean.sizes());
  at::NoGradGuard g;
  feature_mean.copy_(mean);
}

// Undefined when centering is off, so the paper's configuration runs the
// network exactly as published.
template <class PQModule>
at::Tensor PQVAE<PQModule>::offset() const {
  return config_.center_features ? feature_mean : at::Tensor();
}

template <class PQModule>
PQVAEForward PQVAE<PQModule>::forward(const at::Tensor& x, bool bypass_quantizer) {
  require(x.dim() == 2 && x.size(1) == config_.embed_dim, "{} expects [N, {}] features, got {}",
          PQKind<PQModule>::title, config_.embed_dim, x.sizes());
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

template <class PQModule>
at::Tensor PQVAE<PQModule>::encode(const at::Tensor& x) {
  at::NoGradGuard g;
  require(x.dim() == 2 && x.size(1) == config_.embed_dim, "encode expects [N, {}] features, got {}",
          config_.embed_dim, x.sizes());
  return pq->forward(encoder->forward(x.to(pq->codebook.device(), at::kFloat), offset())).indices;
}

template <class PQModule>
at::Tensor PQVAE<PQModule>::decode(const at::Tensor& indices) {
  at::NoGradGuard g;
  require(indices.dim() == 2 && indices.size(1) == slots(), "decode expects [N, {}] indices, got {}", slots(),
          indices.sizes());
  require(indices.numel() == 0 || (indices.min().item<int64_t>() >= 0 &&
                                   indices.max().item<int64_t>() < config_.codebook_size),
          "decode: indices outside [0, {})", config_.codebook_size);
  return decoder->forward(PQKind<PQModule>::lookup(pq, indices), offset());
}

template <class PQModule>
std::map<std::string, at::Tensor> PQVAE<PQModule>::decoding_state() {
  std::map<std::string, at::Tensor> out;
  auto keep = [](const std::string& name) { return name == "pq.codebook" || name.rfind("decoder.", 0) == 0; };
  for (const auto& p : named_parameters())
    if (keep(p.key())) out[p.key()] = p.value();
  for (const auto& b : named_buffers())
    if (keep(b.key())) out[b.key()] = b.value();
  if (config_.center_features) out["feature_mean"] = feature_mean;
  return out;
}

template class PQVAE<SharedCodebookPQ>;
template class PQVAE<KMeansPQ>;

int64_t pqvae_raw_bits(const ModelConfig& cfg) {
  int64_t bits_per_index = 0;
  while ((int64_t{1} << bits_per_index) < cfg.codebook_size) ++bits_per_index;
  return kLatentPositions * (cfg.latent_channels / cfg.d_sub) * bits_per_index;
}

}  // namespace semcodec
