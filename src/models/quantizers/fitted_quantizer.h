// Quantizers fitted in one pass on training embeddings (no network): learned
// scalar quantization, the FAISS anchors, the float16 / int8 / int4
// references and the adaptive KLT. Their whole state is a few named tensors, which is what a
// checkpoint stores under "model.*" (docs/baselines.md).
//
// All of them quantize the L2-normalized embedding and run on the CPU;
// encode/decode accept tensors on any device and return CPU tensors.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "models/quantizers/quantizer.h"

namespace semcodec {

class FittedQuantizer : public Quantizer {
 public:
  // False until fit() or load_state() ran; encode/decode refuse to run before.
  virtual bool is_trained() const = 0;
  // Everything decode() and encode() depend on.
  virtual std::map<std::string, at::Tensor> state() const = 0;
  // Restores state(); every missing or mis-shaped tensor is an error naming `source`.
  virtual void load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) = 0;
  std::map<std::string, at::Tensor> decoding_state() override { return state(); }
};

// [N, D] -> float32 CPU contiguous rows of unit L2 norm (zero rows stay zero).
at::Tensor unit_rows_cpu(const at::Tensor& x, int64_t embed_dim, const char* what);
// Checks [N, slots] indices in [0, alphabet) and returns them as contiguous int64 CPU.
at::Tensor checked_indices_cpu(const at::Tensor& indices, int64_t slots, int64_t alphabet, const char* what);
// state.at(name) with shape and dtype checks; the error names `source`.
at::Tensor state_tensor(const std::map<std::string, at::Tensor>& state, const std::string& name,
                        at::IntArrayRef shape, at::ScalarType dtype, const std::string& source);

}  // namespace semcodec
