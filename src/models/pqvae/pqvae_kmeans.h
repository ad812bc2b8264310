// VQ-VAE with k-means product quantization (the paper's first baseline,
// docs/baselines.md): PQVAE-shared's encoder and decoder, but a separate
// codebook per sub-space (KMeansPQ), initialized by k-means on encoder
// outputs and updated by EMA of the assigned sub-vectors instead of a
// codebook loss. Same slots and rate as PQVAE-shared: 25 * (c / d_sub)
// indices of ceil(log2 K) bits.
#pragma once
#include "models/pqvae/pqvae.h"
#include "models/quantizers/kmeans_pq.h"

namespace semcodec {

class PQVAEKMeans : public PQVAE<KMeansPQ> {
 public:
  using PQVAE<KMeansPQ>::PQVAE;
};

}  // namespace semcodec
