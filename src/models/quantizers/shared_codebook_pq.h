// Product quantization with ONE codebook shared by every latent position and
// every sub-space (the "PQ-shared" of PQVAE-shared, paper Sec. 3.2): the
// latent [N, P, c], flattened position-major, is cut into consecutive
// sub-vectors of d_sub, each replaced by its nearest codeword (squared
// Euclidean). When d_sub divides c that is c/d_sub sub-vectors per position;
// otherwise (d_sub 10 or 25 of c = 128) sub-vectors run across positions,
// exactly as the authors' release cuts its channel-last [5, 5, 128] latent,
// and d_sub need only divide P * c. Training uses the straight-through
// estimator plus the VQ-VAE codebook and commitment terms.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/quantizers/pq_module.h"

namespace semcodec {

class SharedCodebookPQImpl : public PQModule {
 public:
  SharedCodebookPQImpl(int64_t channels, int64_t d_sub, int64_t codebook_size, DeadCodeOptions dead_codes = {});

  PQForward forward(const at::Tensor& z) override;
  // Latents z are [N, P, c] (P positions). Sub-vectors in slot order: [N * slots(P), d_sub].
  at::Tensor subvectors(const at::Tensor& z) const;
  at::Tensor lookup(const at::Tensor& indices, int64_t positions) const override;

  void init_uniform(uint64_t seed) override;
  // From encoder sub-vectors: "kmeans" (k-means++ then Lloyd) or "sample" (random rows).
  void init_from_data(const at::Tensor& subvectors, const std::string& method, uint64_t seed);

  // Marks the indices used at `step`; codewords unused for more than
  // `after_steps` are re-seeded from random rows of `recent` (jittered).
  // Returns the re-seeded codeword ids (the optimizer resets their moments).
  std::vector<int64_t> restart_dead_codes(const at::Tensor& indices, const at::Tensor& recent, int64_t step,
                                          int64_t after_steps, uint64_t seed);

  // PQModule: one codebook, so a codeword's id is its index; the codebook is
  // learned by gradient (the codebook loss), and after a step only dead
  // codewords change (re-seeded from the batch's sub-vectors).
  int64_t codebook_size() const override { return codebook_size_; }
  int64_t subspaces() const override { return channels_ % d_sub_ == 0 ? channels_ / d_sub_ : 0; }
  int64_t slots(int64_t positions) const override;
  int64_t codeword_count() const override { return codebook_size_; }
  at::Tensor codeword_ids(const at::Tensor& indices) const override { return indices; }
  int64_t subvectors_per_codebook(int64_t positions) const override { return slots(positions); }
  void fit(const at::Tensor& latents, const std::string& init, uint64_t seed, int64_t step) override;
  CodebookUpdate update_after_step(const at::Tensor& latents, const PQForward& quantized, int64_t step, uint64_t seed,
                                   const SumOverRanks& sum_over_ranks) override;

  int64_t d_sub() const { return d_sub_; }
  at::Tensor codebook;   // [K, d_sub] parameter
  at::Tensor last_used;  // [K] int64 buffer: last step a codeword was chosen (dead-code tracking)

 private:
  int64_t channels_, d_sub_, codebook_size_;
  DeadCodeOptions dead_codes_;
};
TORCH_MODULE(SharedCodebookPQ);

}  // namespace semcodec
