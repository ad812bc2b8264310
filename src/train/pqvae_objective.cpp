#include "train/pqvae_objective.h"

#include <ATen/ATen.h>

namespace semcodec {

PQVAELoss pqvae_loss(const at::Tensor& x, const PQVAEForward& fwd, const LossConfig& cfg) {
  // The reconstruction is unit norm by construction; x may not be.
  at::Tensor xn = x / x.norm(2, {1}, true).clamp_min(1e-12);
  at::Tensor cos = (xn * fwd.reconstruction).sum(1);
  at::Tensor distortion = (1 - cos).mean();
  PQVAELoss out;
  out.total = cfg.alpha * distortion + fwd.pq.codebook_loss + cfg.beta * fwd.pq.commitment_loss;
  out.distortion = distortion.item<double>();
  out.codebook = fwd.pq.codebook_loss.item<double>();
  out.commitment = fwd.pq.commitment_loss.item<double>();
  out.mean_cosine = 1 - out.distortion;
  return out;
}

}  // namespace semcodec
