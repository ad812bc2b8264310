// The PQ-VAE of the paper (Sec. 3): encoder -> product quantizer -> decoder,
// around any PQModule, so PQVAE-shared (one codebook shared by every position
// and sub-space, pqvae_shared.h) and the VQ-VAE k-means PQ baseline (one EMA
// codebook per sub-space, vqvae_kmeans_pq.h) are the same network. It is both
// a trainable torch module and a Quantizer (encode to indices, decode from
// indices) for the codec, eval and sweep layers, and it holds what training
// does to the model itself: the seeded weight initialization and the fit of
// its codebooks to encoder outputs (the trainer, train/network_training.h,
// drives the steps).
#pragma once
#include <torch/nn/module.h>

#include <memory>
#include <string>

#include "models/model_config.h"
#include "models/pqvae/feature_autoencoder.h"
#include "models/quantizers/pq_module.h"
#include "models/quantizers/quantizer.h"

namespace semcodec {

struct PQVAEForward {
  at::Tensor reconstruction;   // [N, D], unit norm
  at::Tensor latent;           // [N, 25, c] encoder output (unit norm per position)
  PQForward pq;
};

class PQVAE : public torch::nn::Module, public Quantizer {
 public:
  // `method` must be cfg.method (`title`: its name in messages); `pq` quantizes the latents.
  PQVAE(const ModelConfig& cfg, std::shared_ptr<PQModule> pq, std::string method, std::string title);
  // bypass_quantizer: the decoder sees the encoder output itself (quantizer
  // warm-up); indices are then empty and the VQ loss terms zero.
  PQVAEForward forward(const at::Tensor& x, bool bypass_quantizer = false);

  // Quantizer
  std::string name() const override { return method_; }
  at::Tensor encode(const at::Tensor& x) override;
  at::Tensor decode(const at::Tensor& indices) override;
  int64_t slots() const override { return pq_->slots(kLatentPositions); }
  int64_t alphabet_size(int64_t) const override { return config_.codebook_size; }
  int64_t embed_dim() const override { return config_.embed_dim; }
  // Sub-vectors that run across positions make one "position" of every slot
  // (entropy tables per position are then shared ones, per sub-space per slot).
  int64_t subspaces() const override { return pq_->subspaces() > 0 ? pq_->subspaces() : slots(); }
  // The codebook, the decoder and (with centering) the feature mean.
  std::map<std::string, at::Tensor> decoding_state() override;

  const ModelConfig& config() const { return config_; }
  PQModule& pq_module() { return *pq_; }
  // Sets the offset direction (mean of the unit-norm training features) that
  // the encoder removes and the decoder adds back (model.center_features).
  void set_feature_mean(const at::Tensor& mean);

  // PyTorch's default initialization of every weight and bias (uniform with
  // bound 1/sqrt(fan_in)), drawn from our own generator so that a seed gives
  // the same network on every LibTorch version; the PQ module keeps its own.
  void init_weights(uint64_t seed);
  // Fits the codebooks (model.codebook_init) to the encoder outputs of a
  // seeded random sample of `features` rows: model.init_samples sub-vectors
  // per codebook and at least 4 per codeword. Codewords count as used at `step`.
  void fit_codebook(const at::Tensor& features, uint64_t seed, int64_t step);

  // Registered in this order (encoder, pq, decoder), which fixes seeded initialization.
  FeatureEncoder encoder{nullptr};
  FeatureDecoder decoder{nullptr};
  at::Tensor feature_mean;  // [D] buffer; zero unless model.center_features

 private:
  at::Tensor offset() const;
  ModelConfig config_;
  std::shared_ptr<PQModule> pq_;
  std::string method_, title_;
};

// Raw rate of a configuration: (25 * c / d_sub) * ceil(log2 K) bits per item.
int64_t pqvae_raw_bits(const ModelConfig& cfg);

// A lower bound on the weights (elements) of the network a config describes:
// its convolution kernels, without biases, buffers or codebooks. A checkpoint
// must hold at least this many before the network is built from its config,
// so that a small file cannot make the loader allocate a huge model. Saturates
// at INT64_MAX.
int64_t pqvae_weight_elements_lower_bound(const ModelConfig& cfg);

}  // namespace semcodec
