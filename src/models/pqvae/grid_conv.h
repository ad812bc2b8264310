// Convolutions on the tiny grids of PQVAE-shared (1x1, 3x3, 5x5) as one large
// GEMM each. Activations are kept as [N, P, C] (P = H*W positions, row-major):
// an ordinary conv gathers each output position's taps and multiplies once; a
// transposed conv multiplies every input position by the whole kernel and
// sums each output position's contributions. Both give exactly the values and
// gradients of at::conv2d / at::conv_transpose2d (tests/models check it), at
// GEMM speed: the CPU backend's own kernels run these shapes 5-30x slower.
// Weights keep PyTorch's layouts, so state dicts map one to one.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace semcodec {

struct GridShape {
  int64_t height = 1, width = 1;
  int64_t positions() const { return height * width; }
};

// A precomputed gather for one layer geometry.
struct GridConvPlan {
  GridShape in, out;
  int64_t kernel = 1, stride = 1, padding = 0;
  bool transposed = false;
  int64_t group = 1;  // gathered rows per output position
  at::Tensor index;   // [out.positions() * group] int64; the value `zero_row` reads zeros
  int64_t zero_row = 0;
  bool identity = false;  // gather is the identity (1x1 kernels): skipped
};

// Ordinary convolution: out = (in + 2p - k) / s + 1.
GridConvPlan conv_plan(GridShape in, int64_t kernel, int64_t stride, int64_t padding);
// Transposed convolution (no output padding): out = (in - 1) * s - 2p + k.
GridConvPlan transposed_conv_plan(GridShape in, int64_t kernel, int64_t stride, int64_t padding);

// x [N, in.positions(), Cin] -> [N, out.positions(), Cout].
// Ordinary: weight [Cout, Cin, k, k]; transposed: weight [Cin, Cout, k, k]. bias [Cout] or undefined.
// Computes in x's type: float32 parameters are cast for a bfloat16 x.
at::Tensor grid_conv(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const GridConvPlan& plan);

}  // namespace semcodec
