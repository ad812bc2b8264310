// The VQ-VAE residual stack used on both sides of PQVAE-shared. Each layer is
// x <- relu(x + W1 * relu(W3 * relu(x))), W3 a 3x3 and W1 a 1x1 kernel, both
// without bias; the encoder uses transposed convolutions, the decoder ordinary
// ones (as in the authors' release). Activations are [N, P, C] (grid_conv.h).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include "models/pqvae/grid_conv.h"

namespace semcodec {

class ResidualStackImpl : public torch::nn::Module {
 public:
  ResidualStackImpl(GridShape grid, int64_t channels, int64_t hidden, int64_t layers, bool transposed);
  at::Tensor forward(at::Tensor x);

 private:
  torch::nn::ModuleList wide_{nullptr}, narrow_{nullptr};
  std::vector<at::Tensor*> wide_w_, narrow_w_;
  GridConvPlan wide_plan_, narrow_plan_;
};
TORCH_MODULE(ResidualStack);

}  // namespace semcodec
