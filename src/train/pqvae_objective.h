// The PQVAE-shared training objective (paper Eq. 7 with the release's
// weighting): alpha * mean(1 - cos(x, x_hat)) + codebook + beta * commitment.
#pragma once
#include <ATen/core/Tensor.h>

#include "models/pqvae/pqvae_shared.h"
#include "models/run_config.h"

namespace semcodec {

struct PQVAELoss {
  at::Tensor total;  // scalar with graph
  double distortion = 0, codebook = 0, commitment = 0;  // detached values, for logs
  double mean_cosine = 0;
};

PQVAELoss pqvae_loss(const at::Tensor& x, const PQVAEForward& fwd, const LossConfig& cfg);

}  // namespace semcodec
