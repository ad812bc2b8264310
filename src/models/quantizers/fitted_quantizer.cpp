#include "models/quantizers/fitted_quantizer.h"

#include <ATen/ATen.h>

#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

at::Tensor unit_rows_cpu(const at::Tensor& x, int64_t embed_dim, const char* what) {
  require(x.dim() == 2 && x.size(1) == embed_dim, "{}: expected [N, {}] embeddings, got {}", what, embed_dim,
          x.sizes());
  at::Tensor f = x.to(at::kCPU, at::kFloat);
  return (f / f.norm(2, {1}, true).clamp_min(1e-12)).contiguous();
}

at::Tensor checked_indices_cpu(const at::Tensor& indices, int64_t slots, int64_t alphabet, const char* what) {
  require(indices.dim() == 2 && indices.size(1) == slots, "{}: expected [N, {}] indices, got {}", what, slots,
          indices.sizes());
  at::Tensor i = indices.to(at::kCPU, at::kLong).contiguous();
  require(i.numel() == 0 || (i.min().item<int64_t>() >= 0 && i.max().item<int64_t>() < alphabet),
          "{}: indices outside [0, {})", what, alphabet);
  return i;
}

at::Tensor state_tensor(const std::map<std::string, at::Tensor>& state, const std::string& name,
                        at::IntArrayRef shape, at::ScalarType dtype, const std::string& source) {
  auto it = state.find(name);
  require(it != state.end(), "{}: the quantizer state has no tensor '{}'", source, name);
  const at::Tensor& t = it->second;
  require(t.sizes() == shape, "{}: tensor '{}' has shape {}, expected {}", source, name, t.sizes(), shape);
  require(t.scalar_type() == dtype, "{}: tensor '{}' has dtype {}, expected {}", source, name,
          c10::toString(t.scalar_type()), c10::toString(dtype));
  return t.to(at::kCPU).contiguous().clone();
}

}  // namespace semcodec
