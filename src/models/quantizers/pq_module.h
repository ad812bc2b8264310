// The product quantizer inside a PQ-VAE (models/pqvae/pqvae.h), trained with
// the network: SharedCodebookPQ (PQVAE-shared) and EmaCodebookPQ (the VQ-VAE
// k-means PQ baseline). Besides quantizing latents it owns its codebooks'
// training behaviour, so the trainer holds no method-specific codebook logic:
// fitting the codebooks to encoder latents, the update after each optimizer
// step (EMA, dead-code restarts) and the codeword ids of usage statistics.
//
// Latents are [N, P, c] (P positions); each c-dim vector is cut into
// S = c / d_sub sub-vectors. Indices are [N, P * S] int64 in slot order
// position * S + sub-space, each in [0, codebook_size()). A module may also
// cut the flattened latent [N, P * c] into consecutive sub-vectors that run
// across positions (the paper release's layout, e.g. d_sub 10 of c = 128):
// it then has slots(P) = P * c / d_sub and subspaces() 0.
#pragma once
#include <torch/nn/module.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace semcodec {

struct PQForward {
  at::Tensor quantized;        // [N, P, c], straight-through: value of q, gradient of z
  at::Tensor indices;          // [N, slots(P)] int64, slot = position * subspaces + subspace
  at::Tensor codebook_loss;    // mean((q - sg(z))^2): moves only a codebook that is a parameter
  at::Tensor commitment_loss;  // mean((sg(q) - z)^2): moves only the encoder
  at::Tensor subvectors;       // [N*P*c/d_sub, d_sub] detached encoder sub-vectors
};

// Re-seeding codewords that no batch has chosen for a while.
struct DeadCodeOptions {
  bool enabled = false;
  int64_t after_steps = 0;  // a codeword unused for more than this many steps is re-seeded
};

// What update_after_step changed.
struct CodebookUpdate {
  int64_t restarts = 0;  // codewords re-seeded
  // The module's parameter (e.g. "codebook") whose `rows` were re-seeded: the
  // optimizer restarts their moments. Empty when the codebooks are buffers.
  std::string parameter;
  std::vector<int64_t> rows;
};

// Sums the tensors in place over the ranks of a data-parallel run (nothing to
// do in a single process).
using SumOverRanks = std::function<void(const std::vector<at::Tensor>&)>;

class PQModule : public torch::nn::Module {
 public:
  // Latents [N, P, c] -> quantized (straight-through), indices [N, P*S],
  // codebook and commitment losses, detached sub-vectors.
  virtual PQForward forward(const at::Tensor& z) = 0;
  // Indices [N, positions * S] -> codewords [N, positions, c].
  virtual at::Tensor lookup(const at::Tensor& indices, int64_t positions) const = 0;
  // Sub-vectors per position; 0 when sub-vectors run across positions.
  virtual int64_t subspaces() const = 0;
  // Indices per item for P positions.
  virtual int64_t slots(int64_t positions) const { return positions * subspaces(); }
  virtual int64_t codebook_size() const = 0;  // K, the alphabet of every slot

  // Codewords over all codebooks, and the id in [0, codeword_count()) of the
  // codeword each index names (same shape as `indices`): usage statistics.
  virtual int64_t codeword_count() const = 0;
  virtual at::Tensor codeword_ids(const at::Tensor& indices) const = 0;
  // How many sub-vectors one item gives each codebook, with P = `positions`.
  virtual int64_t subvectors_per_codebook(int64_t positions) const = 0;

  // The paper's initialization: every codeword U(-1, 1).
  virtual void init_uniform(uint64_t seed) = 0;
  // Fits the codebooks to encoder latents [N, P, c] by `init` ("kmeans":
  // k-means++ then Lloyd, "sample": random sub-vectors; "uniform": the
  // paper's U(-1, 1), latents unused); every codeword counts as used at `step`.
  virtual void fit(const at::Tensor& latents, const std::string& init, uint64_t seed, int64_t step) = 0;
  // After the optimizer step of a quantized batch (its latents [N, P, c] and
  // forward()): the module's own codebook updates, e.g. EMA and dead-code
  // restarts seeded by `seed`. Batch statistics that every rank must share
  // go through `sum_over_ranks`.
  virtual CodebookUpdate update_after_step(const at::Tensor& latents, const PQForward& quantized, int64_t step,
                                           uint64_t seed, const SumOverRanks& sum_over_ranks) = 0;
};

}  // namespace semcodec
