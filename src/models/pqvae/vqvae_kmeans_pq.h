// VQ-VAE with k-means product quantization (the paper's first baseline, the
// method vqvae_kmeans_pq; docs/baselines.md): PQVAE-shared's encoder and
// decoder, but a separate codebook per sub-space (EmaCodebookPQ), initialized
// by k-means on encoder outputs and updated by EMA of the assigned
// sub-vectors instead of a codebook loss. Same slots and rate as
// PQVAE-shared: 25 * (c / d_sub) indices of ceil(log2 K) bits.
#pragma once
#include "models/pqvae/pqvae.h"
#include "models/quantizers/ema_codebook_pq.h"

namespace semcodec {

class VQVAEKMeansPQ : public PQVAE {
 public:
  explicit VQVAEKMeansPQ(const ModelConfig& cfg);
  EmaCodebookPQ pq;  // the PQ module, registered as "pq"

 private:
  VQVAEKMeansPQ(const ModelConfig& cfg, EmaCodebookPQ pq_module);
};

}  // namespace semcodec
