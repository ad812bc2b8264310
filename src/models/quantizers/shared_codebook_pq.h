// Product quantization with ONE codebook shared by every latent position and
// every sub-space (the "PQ-shared" of PQVAE-shared, paper Sec. 3.2): each
// c-dim latent vector is cut into c/d_sub sub-vectors, each replaced by its
// nearest codeword (squared Euclidean). Training uses the straight-through
// estimator plus the VQ-VAE codebook and commitment terms.
#pragma once
#include <torch/nn/module.h>

#include <cstdint>
#include <string>

namespace semcodec {

struct PQForward {
  at::Tensor quantized;        // [N, P, c], straight-through: value of q, gradient of z
  at::Tensor indices;          // [N, P*c/d_sub] int64, slot = position * subspaces + subspace
  at::Tensor codebook_loss;    // mean((q - sg(z))^2): moves only the codebook
  at::Tensor commitment_loss;  // mean((sg(q) - z)^2): moves only the encoder
  at::Tensor subvectors;       // [N*P*c/d_sub, d_sub] detached encoder sub-vectors
};

class SharedCodebookPQImpl : public torch::nn::Module {
 public:
  SharedCodebookPQImpl(int64_t channels, int64_t d_sub, int64_t codebook_size);

  PQForward forward(const at::Tensor& z);
  // Latents z are [N, P, c] (P positions). Sub-vectors in slot order: [N*P*subspaces, d_sub].
  at::Tensor subvectors(const at::Tensor& z) const;
  // Codewords for indices [N, P*subspaces] -> [N, P, c].
  at::Tensor lookup(const at::Tensor& indices, int64_t positions) const;

  // The paper's initialization: U(-1, 1).
  void init_uniform(uint64_t seed);
  // From encoder sub-vectors: "kmeans" (k-means++ then Lloyd) or "sample" (random rows).
  void init_from_data(const at::Tensor& subvectors, const std::string& method, uint64_t seed);

  // Marks the indices used at `step`; codewords unused for more than
  // `after_steps` are re-seeded from random rows of `recent` (jittered).
  // Returns the re-seeded codeword ids (the optimizer resets their moments).
  std::vector<int64_t> restart_dead_codes(const at::Tensor& indices, const at::Tensor& recent, int64_t step,
                                          int64_t after_steps, uint64_t seed);

  int64_t codebook_size() const { return codebook_size_; }
  int64_t d_sub() const { return d_sub_; }
  int64_t subspaces() const { return channels_ / d_sub_; }
  at::Tensor codebook;   // [K, d_sub] parameter
  at::Tensor last_used;  // [K] int64 buffer: last step a codeword was chosen (dead-code tracking)

 private:
  int64_t channels_, d_sub_, codebook_size_;
};
TORCH_MODULE(SharedCodebookPQ);

}  // namespace semcodec
