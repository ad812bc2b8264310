// The one interface every compression method implements (FAISS's Index is the
// model): CLIP embeddings in, integer indices out, and back. The codec, the
// sweep and the report only see this interface.
#pragma once
#include <ATen/core/Tensor.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>

namespace semcodec {

class Quantizer {
 public:
  virtual ~Quantizer() = default;
  virtual std::string name() const = 0;
  // Fits codebooks or levels to [N, D] training embeddings (FAISS's
  // Index::train; named apart from torch::nn::Module::train, which the
  // networks also have). Methods trained by gradient descent (the
  // auto-encoders) are trained by the trainer instead and keep this no-op.
  virtual void fit(const at::Tensor& x) {}
  // [N, D] float embeddings -> [N, slots()] int64 indices.
  virtual at::Tensor encode(const at::Tensor& x) = 0;
  // [N, slots()] int64 indices -> [N, D] float32 reconstructions.
  virtual at::Tensor decode(const at::Tensor& indices) = 0;
  virtual int64_t slots() const = 0;
  // Alphabet size of one slot: what the entropy coder needs.
  virtual int64_t alphabet_size(int64_t slot) const = 0;
  virtual int64_t embed_dim() const = 0;
  // Slots are position-major over this many sub-spaces (slot = position *
  // subspaces + subspace); entropy tables may be shared along either axis.
  virtual int64_t subspaces() const { return 1; }
  // Every tensor decode() depends on, by name: the codec fingerprint hashes
  // them, so a stream only decodes with the model that made it.
  virtual std::map<std::string, at::Tensor> decoding_state() = 0;
  // Bits per item with fixed-length codes: sum over slots of ceil(log2 K_s).
  virtual double raw_bits() const {
    double bits = 0;
    for (int64_t s = 0; s < slots(); ++s) bits += std::ceil(std::log2(static_cast<double>(alphabet_size(s))));
    return bits;
  }
};

}  // namespace semcodec
