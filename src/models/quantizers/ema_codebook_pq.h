// Product quantization with a separate codebook per sub-space, initialized by
// k-means and moved by exponential moving averages: the quantizer of the
// VQ-VAE k-means PQ baseline (van den Oord et al. 2017 with EMA codebooks;
// Wu & Flierl 2019 product codebooks).
//
// Each c-dim latent vector at each of the P positions is cut into
// S = c / d_sub sub-vectors; sub-space s has its own codebook [K, d_sub]
// (kmeans_per_position: one per (position, sub-space) pair). Slot order is
// position * S + sub-space, as in SharedCodebookPQ, so the rate is the same:
// P * S * ceil(log2 K) bits.
//
// Codebooks are buffers, not parameters: after each step, ema_update() moves
// every codeword to the exponential moving average of the sub-vectors
// assigned to it (counts with Laplace smoothing), in place of the codebook
// loss. The encoder still gets the commitment term and the straight-through
// gradient.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "models/quantizers/pq_module.h"
#include "util/config_fields.h"

namespace semcodec {

// The method vqvae_kmeans_pq's own options (model.kmeans_* keys).
struct EmaCodebookOptions {
  double ema_decay = 0.99;
  double ema_epsilon = 1e-5;  // Laplace smoothing of the EMA counts
  bool per_position = false;  // one codebook per (position, sub-space) instead of per sub-space
  template <class V> void visit(V& v) {
    v.field("kmeans_ema_decay", ema_decay, "vqvae_kmeans_pq: EMA decay of the codebook statistics",
            Limits::range(0, 0.99999));
    v.field("kmeans_ema_epsilon", ema_epsilon, "vqvae_kmeans_pq: Laplace smoothing of the EMA counts",
            Limits::range(0, 1));
    v.field("kmeans_per_position", per_position,
            "vqvae_kmeans_pq: one codebook per (position, sub-space) instead of one per sub-space", {});
  }
};

class EmaCodebookPQImpl : public PQModule {
 public:
  EmaCodebookPQImpl(int64_t channels, int64_t d_sub, int64_t codebook_size, int64_t positions,
                    const EmaCodebookOptions& options = {}, DeadCodeOptions dead_codes = {});

  // Latents [N, P, c] -> quantized (straight-through), indices [N, P*S],
  // codebook_loss 0, commitment mean((sg(q) - z)^2), subvectors [N*P*S, d_sub].
  PQForward forward(const at::Tensor& z) override;
  // Indices [N, P*S] -> codewords [N, P, c] (`positions` must be P).
  at::Tensor lookup(const at::Tensor& indices, int64_t positions) const override;
  // Sub-vectors grouped by codebook: [G, rows, d_sub] (rows = N*P or N).
  at::Tensor grouped(const at::Tensor& z) const;

  void init_uniform(uint64_t seed) override;
  // "kmeans" (k-means++ then Lloyd, per codebook) or "sample" on latents [N, P, c].
  void init_from_latents(const at::Tensor& z, const std::string& method, uint64_t seed);

  // One EMA step from latents [N, P, c] and their indices [N, P*S]:
  //   count <- decay * count + (1 - decay) * n_k
  //   sum   <- decay * sum   + (1 - decay) * (sum of sub-vectors assigned to k)
  //   codeword_k <- sum_k / ((count_k + eps) / (n + K eps) * n),  n = sum_k count_k (per codebook)
  void ema_update(const at::Tensor& z, const at::Tensor& indices, double decay, double epsilon);
  // The same in two halves, so data-parallel training can sum the batch
  // statistics over ranks in between: n_k [G, K] and the sums [G, K, d_sub].
  std::pair<at::Tensor, at::Tensor> batch_statistics(const at::Tensor& z, const at::Tensor& indices) const;
  void apply_ema(const at::Tensor& counts, const at::Tensor& sums, double decay, double epsilon);

  // Codewords of any codebook unused for more than `after_steps` are
  // re-seeded from random sub-vectors of the same codebook in `z` (jittered);
  // their EMA statistics restart at count 1. Returns how many were re-seeded.
  int64_t restart_dead_codes(const at::Tensor& z, const at::Tensor& indices, int64_t step, int64_t after_steps,
                             uint64_t seed);

  // PQModule: G codebooks of K codewords; codeword ids are g * K + k. After
  // a step the codewords move by EMA (statistics summed over ranks), then
  // dead ones are re-seeded.
  int64_t codebook_size() const override { return codebook_size_; }
  int64_t subspaces() const override { return channels_ / d_sub_; }
  int64_t codeword_count() const override { return groups_ * codebook_size_; }
  at::Tensor codeword_ids(const at::Tensor& indices) const override;
  int64_t subvectors_per_codebook(int64_t positions) const override { return per_position_ ? 1 : positions; }
  void fit(const at::Tensor& latents, const std::string& init, uint64_t seed, int64_t step) override;
  CodebookUpdate update_after_step(const at::Tensor& latents, const PQForward& quantized, int64_t step, uint64_t seed,
                                   const SumOverRanks& sum_over_ranks) override;

  int64_t groups() const { return groups_; }
  int64_t d_sub() const { return d_sub_; }

  at::Tensor codebook;   // [G, K, d_sub]
  at::Tensor ema_count;  // [G, K]
  at::Tensor ema_sum;    // [G, K, d_sub]
  at::Tensor last_used;  // [G, K] int64: last step a codeword was chosen

 private:
  // Resets the EMA statistics to "codeword seen once".
  void reset_ema();
  // [G, rows] indices per codebook -> [N, P*S].
  at::Tensor ungroup(const at::Tensor& idx, int64_t n) const;
  int64_t channels_, d_sub_, codebook_size_, positions_, groups_;
  bool per_position_;
  double ema_decay_, ema_epsilon_;
  DeadCodeOptions dead_codes_;
};
TORCH_MODULE(EmaCodebookPQ);

}  // namespace semcodec
