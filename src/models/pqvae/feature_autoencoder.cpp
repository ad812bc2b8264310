#include "models/pqvae/feature_autoencoder.h"

#include <ATen/ATen.h>

#include "data/device.h"
#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {
namespace nn = torch::nn;

// The epsilon only guards exact zeros (rejected when features are loaded).
at::Tensor l2_normalize(const at::Tensor& x, int64_t dim) {
  return x / x.norm(2, {dim}, /*keepdim=*/true).clamp_min(1e-12);
}

c10::ScalarType compute_dtype(const ModelConfig& cfg, c10::Device device) {
  if (cfg.compute_dtype == "float32") return at::kFloat;
  if (cfg.compute_dtype == "bfloat16") return at::kBFloat16;
  // bfloat16 only where it was measured to pay off: oneDNN on a CPU with
  // AMX / AVX512-BF16. A GPU keeps float32 unless asked.
  if (cfg.compute_dtype == "auto") return device.is_cpu() && cpu_has_native_bfloat16() ? at::kBFloat16 : at::kFloat;
  fail("model.compute_dtype: '{}' is not float32, bfloat16 or auto", cfg.compute_dtype);
}

ComputeDtype::ComputeDtype(const ModelConfig& c)
    : cpu_(compute_dtype(c, c10::Device(c10::kCPU))), other_(compute_dtype(c, c10::Device(c10::kCUDA, 0))) {}

FeatureEncoderImpl::FeatureEncoderImpl(const ModelConfig& c) : compute_(c) {
  up1_ = register_module("up1", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(c.embed_dim, c.hidden_channels, 3).stride(2)));
  up2_ = register_module(
      "up2", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(c.hidden_channels, c.body_channels, 3).stride(2).padding(1)));
  res_ = register_module("res", ResidualStack(GridShape{5, 5}, c.body_channels, c.residual_channels, c.residual_layers,
                                              /*transposed=*/true));
  to_latent_ = register_module("to_latent", nn::Conv2d(nn::Conv2dOptions(c.body_channels, c.latent_channels, 3).padding(1)));
  up1_plan_ = transposed_conv_plan({1, 1}, 3, 2, 0);  // 1x1 -> 3x3
  up2_plan_ = transposed_conv_plan({3, 3}, 3, 2, 1);  // 3x3 -> 5x5
  to_latent_plan_ = conv_plan({5, 5}, 3, 1, 1);
}

at::Tensor FeatureEncoderImpl::forward(const at::Tensor& x, const at::Tensor& offset) {
  require(x.dim() == 2, "encoder expects [N, D] features, got {}", x.sizes());
  at::Tensor h = l2_normalize(x, 1);
  if (offset.defined()) h = l2_normalize(h - offset, 1);
  h = h.unsqueeze(1);  // [N, 1, D]
  h = grid_conv(h, up1_->weight, up1_->bias, up1_plan_).relu().to(compute_.on(h));
  h = grid_conv(h, up2_->weight, up2_->bias, up2_plan_).relu();
  h = res_->forward(h);
  return l2_normalize(grid_conv(h, to_latent_->weight, to_latent_->bias, to_latent_plan_).to(at::kFloat), 2);
}

FeatureDecoderImpl::FeatureDecoderImpl(const ModelConfig& c) : compute_(c) {
  from_latent_ = register_module("from_latent", nn::Conv2d(nn::Conv2dOptions(c.latent_channels, c.body_channels, 3).padding(1)));
  res_ = register_module("res", ResidualStack(GridShape{5, 5}, c.body_channels, c.residual_channels, c.residual_layers,
                                              /*transposed=*/false));
  down1_ = register_module("down1", nn::Conv2d(nn::Conv2dOptions(c.body_channels, c.hidden_channels, 3).stride(2).padding(1)));
  down2_ = register_module("down2", nn::Conv2d(nn::Conv2dOptions(c.hidden_channels, c.embed_dim, 3).stride(2)));
  from_latent_plan_ = conv_plan({5, 5}, 3, 1, 1);
  down1_plan_ = conv_plan({5, 5}, 3, 2, 1);  // 5x5 -> 3x3
  down2_plan_ = conv_plan({3, 3}, 3, 2, 0);  // 3x3 -> 1x1
}

at::Tensor FeatureDecoderImpl::forward(const at::Tensor& latent, const at::Tensor& offset) {
  require(latent.dim() == 3 && latent.size(1) == kLatentPositions, "decoder expects [N, 25, c] latents, got {}",
          latent.sizes());
  at::Tensor h = grid_conv(latent.to(compute_.on(latent)), from_latent_->weight, from_latent_->bias, from_latent_plan_);
  h = res_->forward(h);
  h = grid_conv(h, down1_->weight, down1_->bias, down1_plan_).relu();
  h = grid_conv(h.to(at::kFloat), down2_->weight, down2_->bias, down2_plan_).flatten(1);
  return l2_normalize(offset.defined() ? h + offset : h, 1);
}

}  // namespace semcodec
