// PQVAE-shared (paper Sec. 3): encoder -> shared-codebook product quantizer ->
// decoder. It is both a trainable torch module and a Quantizer (encode to
// indices, decode from indices) for the codec, eval and sweep layers.
#pragma once
#include <torch/nn/module.h>

#include "models/pqvae/feature_autoencoder.h"
#include "models/quantizers/quantizer.h"
#include "models/quantizers/shared_codebook_pq.h"
#include "util/run_config.h"

namespace semcodec {

struct PQVAEForward {
  at::Tensor reconstruction;   // [N, D], unit norm
  at::Tensor latent;           // [N, 25, c] encoder output (unit norm per position)
  PQForward pq;
};

class PQVAEShared : public torch::nn::Module, public Quantizer {
 public:
  explicit PQVAEShared(const ModelConfig& cfg);

  // bypass_quantizer: the decoder sees the encoder output itself (quantizer
  // warm-up); indices are then empty and the VQ loss terms zero.
  PQVAEForward forward(const at::Tensor& x, bool bypass_quantizer = false);

  // Quantizer
  std::string name() const override { return "pqvae_shared"; }
  // Both bases have a train(): Module's switches training mode, Quantizer's
  // (a no-op here: the trainer fits the network) fits to data.
  using torch::nn::Module::train;
  using Quantizer::train;
  at::Tensor encode(const at::Tensor& x) override;
  at::Tensor decode(const at::Tensor& indices) override;
  int64_t slots() const override { return kLatentPositions * pq->subspaces(); }
  int64_t alphabet_size(int64_t) const override { return config_.codebook_size; }
  int64_t embed_dim() const override { return config_.embed_dim; }

  const ModelConfig& config() const { return config_; }
  // Sets the offset direction (mean of the unit-norm training features) that
  // the encoder removes and the decoder adds back (model.center_features).
  void set_feature_mean(const at::Tensor& mean);

  FeatureEncoder encoder{nullptr};
  SharedCodebookPQ pq{nullptr};
  FeatureDecoder decoder{nullptr};
  at::Tensor feature_mean;  // [D] buffer; zero unless model.center_features

 private:
  at::Tensor offset() const;

 public:

 private:
  ModelConfig config_;
};

// Raw rate of a configuration: 25 * (c / d_sub) * ceil(log2 K) bits per item.
int64_t pqvae_raw_bits(const ModelConfig& cfg);

}  // namespace semcodec
