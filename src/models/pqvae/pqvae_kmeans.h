// VQ-VAE with k-means product quantization (the paper's first baseline,
// docs/baselines.md): PQVAE-shared's encoder and decoder, but a separate
// codebook per sub-space (KMeansPQ), initialized by k-means on encoder
// outputs and updated by EMA of the assigned sub-vectors instead of a
// codebook loss. Same slots and rate as PQVAE-shared: 25 * (c / d_sub)
// indices of ceil(log2 K) bits.
#pragma once
#include <torch/nn/module.h>

#include "models/pqvae/feature_autoencoder.h"
#include "models/pqvae/pqvae_shared.h"
#include "models/quantizers/kmeans_pq.h"
#include "models/quantizers/quantizer.h"
#include "util/run_config.h"

namespace semcodec {

class PQVAEKMeans : public torch::nn::Module, public Quantizer {
 public:
  explicit PQVAEKMeans(const ModelConfig& cfg);

  // bypass_quantizer: the decoder sees the encoder output (quantizer warm-up).
  PQVAEForward forward(const at::Tensor& x, bool bypass_quantizer = false);

  std::string name() const override { return "vqvae_kmeans_pq"; }
  using torch::nn::Module::train;
  using Quantizer::train;
  at::Tensor encode(const at::Tensor& x) override;
  at::Tensor decode(const at::Tensor& indices) override;
  int64_t slots() const override { return kLatentPositions * pq->subspaces(); }
  int64_t alphabet_size(int64_t) const override { return config_.codebook_size; }
  int64_t embed_dim() const override { return config_.embed_dim; }

  const ModelConfig& config() const { return config_; }
  void set_feature_mean(const at::Tensor& mean);

  FeatureEncoder encoder{nullptr};
  KMeansPQ pq{nullptr};
  FeatureDecoder decoder{nullptr};
  at::Tensor feature_mean;  // [D] buffer; zero unless model.center_features

 private:
  at::Tensor offset() const;
  ModelConfig config_;
};

}  // namespace semcodec
