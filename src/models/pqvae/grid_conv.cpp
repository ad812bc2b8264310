#include "models/pqvae/grid_conv.h"

#include <ATen/ATen.h>

#include <vector>

#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

namespace {
at::Tensor to_index(const std::vector<int64_t>& v) { return at::tensor(v, at::kLong); }

bool is_identity(const std::vector<int64_t>& idx) {
  for (size_t i = 0; i < idx.size(); ++i)
    if (idx[i] != static_cast<int64_t>(i)) return false;
  return true;
}
}  // namespace

GridConvPlan conv_plan(GridShape in, int64_t k, int64_t s, int64_t p) {
  GridConvPlan plan;
  plan.in = in;
  plan.kernel = k, plan.stride = s, plan.padding = p;
  plan.out = {(in.height + 2 * p - k) / s + 1, (in.width + 2 * p - k) / s + 1};
  require(plan.out.height > 0 && plan.out.width > 0, "conv k={} s={} p={} does not fit a {}x{} grid", k, s, p,
          in.height, in.width);
  plan.group = k * k;
  plan.zero_row = in.positions();
  std::vector<int64_t> idx;
  for (int64_t oy = 0; oy < plan.out.height; ++oy)
    for (int64_t ox = 0; ox < plan.out.width; ++ox)
      for (int64_t ky = 0; ky < k; ++ky)
        for (int64_t kx = 0; kx < k; ++kx) {
          int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
          bool inside = iy >= 0 && iy < in.height && ix >= 0 && ix < in.width;
          idx.push_back(inside ? iy * in.width + ix : plan.zero_row);
        }
  plan.identity = is_identity(idx) && static_cast<int64_t>(idx.size()) == in.positions();
  plan.index = to_index(idx);
  return plan;
}

GridConvPlan transposed_conv_plan(GridShape in, int64_t k, int64_t s, int64_t p) {
  GridConvPlan plan;
  plan.in = in;
  plan.kernel = k, plan.stride = s, plan.padding = p;
  plan.transposed = true;
  plan.out = {(in.height - 1) * s - 2 * p + k, (in.width - 1) * s - 2 * p + k};
  require(plan.out.height > 0 && plan.out.width > 0, "transposed conv k={} s={} p={} does not fit a {}x{} grid", k,
          s, p, in.height, in.width);
  // Input position i with tap t writes output (iy*s - p + ky, ix*s - p + kx);
  // contribution rows are numbered i * k*k + t. Collect them per output.
  std::vector<std::vector<int64_t>> contrib(plan.out.positions());
  for (int64_t iy = 0; iy < in.height; ++iy)
    for (int64_t ix = 0; ix < in.width; ++ix)
      for (int64_t ky = 0; ky < k; ++ky)
        for (int64_t kx = 0; kx < k; ++kx) {
          int64_t oy = iy * s - p + ky, ox = ix * s - p + kx;
          if (oy < 0 || oy >= plan.out.height || ox < 0 || ox >= plan.out.width) continue;
          contrib[oy * plan.out.width + ox].push_back((iy * in.width + ix) * k * k + ky * k + kx);
        }
  plan.group = 1;
  for (auto& c : contrib) plan.group = std::max<int64_t>(plan.group, static_cast<int64_t>(c.size()));
  plan.zero_row = in.positions() * k * k;
  std::vector<int64_t> idx;
  for (auto& c : contrib) {
    for (int64_t j = 0; j < plan.group; ++j) idx.push_back(j < static_cast<int64_t>(c.size()) ? c[j] : plan.zero_row);
  }
  plan.identity = is_identity(idx) && static_cast<int64_t>(idx.size()) == plan.zero_row;
  plan.index = to_index(idx);
  return plan;
}

at::Tensor grid_conv(const at::Tensor& x, const at::Tensor& weight_param, const at::Tensor& bias_param,
                     const GridConvPlan& plan) {
  // Parameters stay float32; a bfloat16 input computes in bfloat16 (the casts are differentiable).
  const at::Tensor weight = weight_param.scalar_type() == x.scalar_type() ? weight_param : weight_param.to(x.scalar_type());
  const at::Tensor bias = !bias_param.defined() || bias_param.scalar_type() == x.scalar_type()
                              ? bias_param
                              : bias_param.to(x.scalar_type());
  const int64_t n = x.size(0), k = plan.kernel, taps = k * k;
  require(x.dim() == 3 && x.size(1) == plan.in.positions(), "grid_conv: input {} does not match a {}x{} grid",
          x.sizes(), plan.in.height, plan.in.width);
  const int64_t cin = x.size(2);
  auto gather = [&](const at::Tensor& rows) {  // rows [N, R, C] -> [N, out * group, C]
    if (plan.identity) return rows;
    at::Tensor padded = at::cat({rows, at::zeros({n, 1, rows.size(2)}, rows.options())}, 1);
    return padded.index_select(1, plan.index.to(rows.device()));
  };
  at::Tensor y;
  if (!plan.transposed) {
    const int64_t cout = weight.size(0);
    require(weight.size(1) == cin && weight.size(2) == k, "grid_conv: weight {} does not fit input channels {}",
            weight.sizes(), cin);
    at::Tensor cols = gather(x).reshape({n * plan.out.positions(), taps * cin});
    at::Tensor w = weight.permute({0, 2, 3, 1}).reshape({cout, taps * cin});  // [o, (ky, kx, c)]
    y = bias.defined() ? at::addmm(bias, cols, w.t()) : at::mm(cols, w.t());
    return y.view({n, plan.out.positions(), cout});
  }
  const int64_t cout = weight.size(1);
  require(weight.size(0) == cin && weight.size(2) == k, "grid_conv: transposed weight {} does not fit input channels {}",
          weight.sizes(), cin);
  at::Tensor w = weight.permute({0, 2, 3, 1}).reshape({cin, taps * cout});  // [c, (ky, kx, o)]
  at::Tensor contrib = at::mm(x.reshape({n * plan.in.positions(), cin}), w).view({n, plan.in.positions() * taps, cout});
  y = gather(contrib).view({n, plan.out.positions(), plan.group, cout}).sum(2);
  return bias.defined() ? y + bias : y;
}

}  // namespace semcodec
