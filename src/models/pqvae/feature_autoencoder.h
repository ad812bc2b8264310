// The analysis and synthesis networks of PQVAE-shared (paper Sec. 3, layer by
// layer as in docs/architecture.md): a D-dim CLIP embedding, viewed as a
// D x 1 x 1 image, is expanded to a 5 x 5 x c latent and back. Latents are
// [N, 25, c] (position-major), the layout the quantizer cuts into sub-vectors.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>

#include "models/model_config.h"
#include "models/pqvae/grid_conv.h"
#include "models/pqvae/residual_stack.h"

namespace semcodec {

constexpr int64_t kLatentSide = 5;  // 1x1 -> 3x3 -> 5x5
constexpr int64_t kLatentPositions = kLatentSide * kLatentSide;

// ModelConfig::compute_dtype for the device a forward pass runs on ("auto"
// differs between the CPU and a GPU; the module may move after construction).
class ComputeDtype {
 public:
  explicit ComputeDtype(const ModelConfig& cfg);
  c10::ScalarType on(const at::Tensor& input) const { return input.is_cpu() ? cpu_ : other_; }

 private:
  c10::ScalarType cpu_, other_;
};

class FeatureEncoderImpl : public torch::nn::Module {
 public:
  explicit FeatureEncoderImpl(const ModelConfig& cfg);
  // [N, D] -> [N, 25, c], L2-normalized along channels at every position.
  // `offset` [D] is subtracted from the unit-norm input and the difference
  // re-normalized (a zero offset is the paper's network exactly).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& offset = {});

 private:
  ComputeDtype compute_;
  torch::nn::ConvTranspose2d up1_{nullptr}, up2_{nullptr};
  ResidualStack res_{nullptr};
  torch::nn::Conv2d to_latent_{nullptr};
  GridConvPlan up1_plan_, up2_plan_, to_latent_plan_;
};
TORCH_MODULE(FeatureEncoder);

class FeatureDecoderImpl : public torch::nn::Module {
 public:
  explicit FeatureDecoderImpl(const ModelConfig& cfg);
  // [N, 25, c] -> [N, D], L2-normalized after adding `offset` [D] (may be undefined).
  at::Tensor forward(const at::Tensor& latent, const at::Tensor& offset = {});

 private:
  ComputeDtype compute_;
  torch::nn::Conv2d from_latent_{nullptr};
  ResidualStack res_{nullptr};
  torch::nn::Conv2d down1_{nullptr}, down2_{nullptr};
  GridConvPlan from_latent_plan_, down1_plan_, down2_plan_;
};
TORCH_MODULE(FeatureDecoder);

at::Tensor l2_normalize(const at::Tensor& x, int64_t dim);
// ModelConfig::compute_dtype as a tensor type for `device` ("auto": bfloat16
// on a CPU with native bfloat16 GEMMs, else float32).
c10::ScalarType compute_dtype(const ModelConfig& cfg, c10::Device device);

}  // namespace semcodec
