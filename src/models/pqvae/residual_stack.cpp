#include "models/pqvae/residual_stack.h"

#include <torch/nn/modules/conv.h>

namespace semcodec {
namespace nn = torch::nn;

ResidualStackImpl::ResidualStackImpl(GridShape grid, int64_t channels, int64_t hidden, int64_t layers, bool transposed) {
  wide_ = register_module("wide", nn::ModuleList());
  narrow_ = register_module("narrow", nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) {
    if (transposed) {
      auto w = nn::ConvTranspose2d(nn::ConvTranspose2dOptions(channels, hidden, 3).padding(1).bias(false));
      auto n = nn::ConvTranspose2d(nn::ConvTranspose2dOptions(hidden, channels, 1).bias(false));
      wide_->push_back(w), narrow_->push_back(n);
      wide_w_.push_back(&w->weight), narrow_w_.push_back(&n->weight);
    } else {
      auto w = nn::Conv2d(nn::Conv2dOptions(channels, hidden, 3).padding(1).bias(false));
      auto n = nn::Conv2d(nn::Conv2dOptions(hidden, channels, 1).bias(false));
      wide_->push_back(w), narrow_->push_back(n);
      wide_w_.push_back(&w->weight), narrow_w_.push_back(&n->weight);
    }
  }
  wide_plan_ = transposed ? transposed_conv_plan(grid, 3, 1, 1) : conv_plan(grid, 3, 1, 1);
  narrow_plan_ = transposed ? transposed_conv_plan(grid, 1, 1, 0) : conv_plan(grid, 1, 1, 0);
}

at::Tensor ResidualStackImpl::forward(at::Tensor x) {
  for (size_t i = 0; i < wide_w_.size(); ++i) {
    at::Tensor h = grid_conv(x.relu(), *wide_w_[i], {}, wide_plan_);
    h = grid_conv(h.relu(), *narrow_w_[i], {}, narrow_plan_);
    x = (x + h).relu();
  }
  return x;
}

}  // namespace semcodec
