#include "models/quantizers/nearest_codeword.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

at::Tensor nearest_codeword(const at::Tensor& x, const at::Tensor& codebook, int64_t max_tile_bytes) {
  require(x.dim() == 2 && codebook.dim() == 2 && x.size(1) == codebook.size(1),
          "nearest_codeword: shapes {} and {} do not match", x.sizes(), codebook.sizes());
  at::NoGradGuard no_grad;
  const at::Tensor xf = x.to(at::kFloat).contiguous();
  const at::Tensor cb = codebook.to(at::kFloat).contiguous();
  const int64_t m = xf.size(0), k = cb.size(0);
  at::Tensor out = at::empty({m}, xf.options().dtype(at::kLong));
  if (m == 0) return out;
  // ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; ||x||^2 is constant per row and
  // does not change the argmin, so it is left out.
  const at::Tensor c_norm = cb.pow(2).sum(1);
  const at::Tensor cb_t = cb.t().contiguous();
  const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(m, max_tile_bytes / (4 * k)));
  for (int64_t start = 0; start < m; start += rows) {
    const int64_t n = std::min(rows, m - start);
    at::Tensor d = at::addmm(c_norm.unsqueeze(0), xf.narrow(0, start, n), cb_t, /*beta=*/1, /*alpha=*/-2);
    out.narrow(0, start, n).copy_(d.argmin(1));
  }
  return out;
}

}  // namespace semcodec
