// The PQ-VAE of the paper (Sec. 3): encoder -> product quantizer -> decoder,
// generic over the product quantizer so PQVAE-shared (one codebook shared by
// every position and sub-space) and the VQ-VAE k-means PQ baseline (one
// codebook per sub-space, EMA updates) are the same network around a
// different PQ module (pqvae_shared.h, pqvae_kmeans.h). It is both a
// trainable torch module and a Quantizer (encode to indices, decode from
// indices) for the codec, eval and sweep layers.
#pragma once
#include <torch/nn/module.h>

#include "models/model_config.h"
#include "models/pqvae/feature_autoencoder.h"
#include "models/quantizers/quantizer.h"
#include "models/quantizers/shared_codebook_pq.h"

namespace semcodec {

struct PQVAEForward {
  at::Tensor reconstruction;   // [N, D], unit norm
  at::Tensor latent;           // [N, 25, c] encoder output (unit norm per position)
  PQForward pq;
};

template <class PQModule>
class PQVAE : public torch::nn::Module, public Quantizer {
 public:
  explicit PQVAE(const ModelConfig& cfg);
  // bypass_quantizer: the decoder sees the encoder output itself (quantizer
  // warm-up); indices are then empty and the VQ loss terms zero.
  PQVAEForward forward(const at::Tensor& x, bool bypass_quantizer = false);

  // Quantizer
  std::string name() const override;
  // Both bases have a train(): Module's switches training mode, Quantizer's
  // (a no-op here: the trainer fits the network) fits to data.
  using torch::nn::Module::train;
  using Quantizer::train;
  at::Tensor encode(const at::Tensor& x) override;
  at::Tensor decode(const at::Tensor& indices) override;
  int64_t slots() const override { return kLatentPositions * pq->subspaces(); }
  int64_t alphabet_size(int64_t) const override { return config_.codebook_size; }
  int64_t embed_dim() const override { return config_.embed_dim; }
  int64_t subspaces() const override { return pq->subspaces(); }
  // The codebook, the decoder and (with centering) the feature mean.
  std::map<std::string, at::Tensor> decoding_state() override;

  const ModelConfig& config() const { return config_; }
  // Sets the offset direction (mean of the unit-norm training features) that
  // the encoder removes and the decoder adds back (model.center_features).
  void set_feature_mean(const at::Tensor& mean);

  // Registered in this order (encoder, pq, decoder), which fixes seeded initialization.
  FeatureEncoder encoder{nullptr};
  PQModule pq{nullptr};
  FeatureDecoder decoder{nullptr};
  at::Tensor feature_mean;  // [D] buffer; zero unless model.center_features

 private:
  at::Tensor offset() const;
  ModelConfig config_;
};

// Raw rate of a configuration: 25 * (c / d_sub) * ceil(log2 K) bits per item.
int64_t pqvae_raw_bits(const ModelConfig& cfg);

}  // namespace semcodec
