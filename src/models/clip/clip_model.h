// OpenAI's CLIP ViT (vision and text transformers) for inference, computing
// exactly what OpenAI's model.py computes: patch embedding (conv without
// bias), class token, positional embedding, ln_pre, pre-LayerNorm residual
// attention blocks with QuickGELU MLPs, ln_post on the class token and the
// projection; the text side with token + positional embedding, causal mask,
// ln_final and pooling at the end-of-text token (the largest id).
//
// Weights keep OpenAI's names (state_dict()). Activations are batch-first
// [N, L, D] (OpenAI uses [L, N, D]; the results are the same). Attention uses
// one fused QKV GEMM and batched matmuls over all heads, or LibTorch's fused
// scaled_dot_product_attention where it exists (LibTorch >= 2.0).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "models/clip/clip_config.h"

namespace semcodec {

class ClipModel {
 public:
  // Takes OpenAI-named weights (any floating dtype, any device); the config is
  // inferred from their shapes and every name and shape is checked (one
  // error listing what is wrong, naming `source`). The model starts on the
  // CPU in float32.
  explicit ClipModel(const std::map<std::string, at::Tensor>& weights, const std::string& source = "CLIP weights");

  const ClipConfig& config() const { return config_; }
  int64_t image_resolution() const { return config_.image_resolution; }
  int64_t context_length() const { return config_.context_length; }
  int64_t embed_dim() const { return config_.embed_dim; }

  // Moves and casts the weights. dtype: float32, float16 or bfloat16 (the
  // reduced types are meant for CUDA). LayerNorms always run in float32, as
  // OpenAI's LayerNorm subclass does.
  void to(c10::Device device, c10::ScalarType dtype = c10::ScalarType::Float);
  c10::Device device() const { return device_; }
  c10::ScalarType dtype() const { return dtype_; }

  // images [N, 3, R, R] (R = image_resolution(), already normalized, any
  // floating dtype and device) -> [N, embed_dim] float32 on the model's device,
  // not normalized (as OpenAI's encode_image).
  at::Tensor encode_image(const at::Tensor& images) const;
  // tokens [N, L] integer ids, L <= context_length() (Tokenizer output) ->
  // [N, embed_dim] float32, not normalized (as OpenAI's encode_text).
  at::Tensor encode_text(const at::Tensor& tokens) const;
  // The same, L2-normalized per row.
  at::Tensor encode_image_normalized(const at::Tensor& images) const;
  at::Tensor encode_text_normalized(const at::Tensor& tokens) const;

  // exp(logit_scale), the temperature OpenAI's forward multiplies by.
  double logit_scale() const;
  // OpenAI's forward: logit_scale() * normalized images @ normalized texts^T,
  // [N_images, N_texts] float32.
  at::Tensor logits_per_image(const at::Tensor& images, const at::Tensor& tokens) const;

  // The weights under OpenAI's names, in their current dtype and device.
  const std::map<std::string, at::Tensor>& state_dict() const { return weights_; }

 private:
  struct Block {
    at::Tensor in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias;
    at::Tensor ln_1_weight, ln_1_bias, ln_2_weight, ln_2_bias;
    at::Tensor c_fc_weight, c_fc_bias, c_proj_weight, c_proj_bias;
  };

  void bind();  // (re)builds the views below from weights_
  at::Tensor run_blocks(at::Tensor x, const std::vector<Block>& blocks, int64_t heads, bool causal) const;

  ClipConfig config_;
  std::map<std::string, at::Tensor> weights_;
  c10::Device device_{c10::kCPU};
  c10::ScalarType dtype_ = c10::ScalarType::Float;
  std::vector<Block> vision_blocks_, text_blocks_;
};


// The type a CLIP model computes in for `name` (extract's and embed-text's
// --dtype) on `device`: float32 (OpenAI's reference numerics); bfloat16 on a
// GPU or a CPU (oneDNN: fast with AMX / AVX512-BF16, slower than float32
// without, which it warns about on stderr); float16 on a GPU only (the CPU
// build has no half GEMMs). Error otherwise.
c10::ScalarType clip_compute_dtype(const std::string& name, const c10::Device& device);

}  // namespace semcodec
