#include "models/clip/clip_model.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>

#include <cmath>
#include <limits>

#include "data/device.h"
#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

namespace {

bool is_layer_norm(const std::string& name) {
  return name.find("ln_") != std::string::npos;  // ln_pre, ln_post, ln_1, ln_2, ln_final
}

// OpenAI's LayerNorm subclass computes in float32 and casts back.
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (x.scalar_type() == at::kFloat) return at::layer_norm(x, {weight.size(0)}, weight, bias, 1e-5);
  return at::layer_norm(x.to(at::kFloat), {weight.size(0)}, weight, bias, 1e-5).to(x.scalar_type());
}

// x [N, L, D] -> self-attention output [N, L, D] (before out_proj).
at::Tensor attention_heads(const at::Tensor& x, const at::Tensor& in_w, const at::Tensor& in_b, int64_t heads,
                           bool causal) {
  const int64_t n = x.size(0), len = x.size(1), width = x.size(2), head_dim = width / heads;
  // One GEMM for q, k and v of every head: [N, L, 3D] -> [3, N, H, L, hd].
  const at::Tensor qkv = at::linear(x, in_w, in_b).view({n, len, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
  const at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
  at::Tensor out;
#if TORCH_VERSION_MAJOR >= 2
  out = at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/causal);
#else
  // nn.MultiheadAttention scales q before the product.
  at::Tensor scores = at::matmul(q * (1.0 / std::sqrt(static_cast<double>(head_dim))), k.transpose(-2, -1));
  if (causal) {
    const at::Tensor future = at::ones({len, len}, x.options().dtype(at::kBool)).triu(1);
    scores.masked_fill_(future, -std::numeric_limits<float>::infinity());
  }
  const at::Tensor probs = x.scalar_type() == at::kFloat ? at::softmax(scores, -1)
                                                          : at::softmax(scores, -1, at::kFloat).to(x.scalar_type());
  out = at::matmul(probs, v);
#endif
  return out.transpose(1, 2).reshape({n, len, width});
}

}  // namespace

ClipModel::ClipModel(const std::map<std::string, at::Tensor>& weights, const std::string& source) {
  config_ = infer_clip_config(weights, source);
  validate_clip_weights(weights, config_, source);
  for (const auto& [name, t] : weights) weights_[name] = t.detach().to(at::kCPU, at::kFloat).contiguous();
  bind();
}

void ClipModel::to(c10::Device device, c10::ScalarType dtype) {
  require(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16,
          "CLIP: unsupported dtype {} (float32, float16 or bfloat16)", std::string(c10::toString(dtype)));
  for (auto& [name, t] : weights_) t = t.to(device, is_layer_norm(name) ? at::kFloat : dtype).contiguous();
  device_ = device;
  dtype_ = dtype;
  bind();
}

void ClipModel::bind() {
  const auto blocks = [&](const std::string& prefix, int64_t layers) {
    std::vector<Block> out(static_cast<size_t>(layers));
    for (int64_t i = 0; i < layers; ++i) {
      const std::string p = prefix + "resblocks." + std::to_string(i) + ".";
      Block& b = out[static_cast<size_t>(i)];
      b.in_proj_weight = weights_.at(p + "attn.in_proj_weight");
      b.in_proj_bias = weights_.at(p + "attn.in_proj_bias");
      b.out_proj_weight = weights_.at(p + "attn.out_proj.weight");
      b.out_proj_bias = weights_.at(p + "attn.out_proj.bias");
      b.ln_1_weight = weights_.at(p + "ln_1.weight");
      b.ln_1_bias = weights_.at(p + "ln_1.bias");
      b.ln_2_weight = weights_.at(p + "ln_2.weight");
      b.ln_2_bias = weights_.at(p + "ln_2.bias");
      b.c_fc_weight = weights_.at(p + "mlp.c_fc.weight");
      b.c_fc_bias = weights_.at(p + "mlp.c_fc.bias");
      b.c_proj_weight = weights_.at(p + "mlp.c_proj.weight");
      b.c_proj_bias = weights_.at(p + "mlp.c_proj.bias");
    }
    return out;
  };
  vision_blocks_ = blocks("visual.transformer.", config_.vision_layers);
  text_blocks_ = blocks("transformer.", config_.transformer_layers);
}

at::Tensor ClipModel::run_blocks(at::Tensor x, const std::vector<Block>& blocks, int64_t heads, bool causal) const {
  for (const Block& b : blocks) {
    const at::Tensor attn =
        attention_heads(layer_norm(x, b.ln_1_weight, b.ln_1_bias), b.in_proj_weight, b.in_proj_bias, heads, causal);
    x = x + at::linear(attn, b.out_proj_weight, b.out_proj_bias);
    at::Tensor h = at::linear(layer_norm(x, b.ln_2_weight, b.ln_2_bias), b.c_fc_weight, b.c_fc_bias);
    h.mul_((h * 1.702).sigmoid_());  // QuickGELU
    x = x + at::linear(h, b.c_proj_weight, b.c_proj_bias);
  }
  return x;
}

at::Tensor ClipModel::encode_image(const at::Tensor& images) const {
  const int64_t r = config_.image_resolution, p = config_.vision_patch_size, g = config_.grid_size(),
                width = config_.vision_width;
  require(images.dim() == 4 && images.size(1) == 3 && images.size(2) == r && images.size(3) == r,
          "CLIP {} encode_image: expected images [N, 3, {}, {}], got {}", config_.name(), r, r, images.sizes());
  require(images.is_floating_point(), "CLIP encode_image: images must be floating point");
  c10::NoGradGuard no_grad;  // not InferenceMode: callers may modify the results in place
  const int64_t n = images.size(0);
  // Non-blocking: a page-locked batch (extraction's pin_memory) is copied by
  // DMA in stream order; a pageable one is copied synchronously.
  const at::Tensor x0 = images.to(device_, dtype_, /*non_blocking=*/true);
  // The patch convolution (stride = kernel, no bias) is one GEMM over
  // non-overlapping patches flattened in the conv weight's (c, y, x) order.
  const at::Tensor patches =
      x0.reshape({n, 3, g, p, g, p}).permute({0, 2, 4, 1, 3, 5}).reshape({n, g * g, 3 * p * p});
  const at::Tensor embedded = at::matmul(patches, weights_.at("visual.conv1.weight").reshape({width, -1}).t());
  at::Tensor x = at::cat({weights_.at("visual.class_embedding").view({1, 1, width}).expand({n, 1, width}), embedded}, 1);
  x = x + weights_.at("visual.positional_embedding");
  x = layer_norm(x, weights_.at("visual.ln_pre.weight"), weights_.at("visual.ln_pre.bias"));
  x = run_blocks(x, vision_blocks_, config_.vision_heads, /*causal=*/false);
  const at::Tensor cls = layer_norm(x.select(1, 0), weights_.at("visual.ln_post.weight"), weights_.at("visual.ln_post.bias"));
  return at::matmul(cls, weights_.at("visual.proj")).to(at::kFloat);
}

at::Tensor ClipModel::encode_text(const at::Tensor& tokens) const {
  require(tokens.dim() == 2 && tokens.size(1) >= 1 && tokens.size(1) <= config_.context_length,
          "CLIP encode_text: expected tokens [N, L] with 1 <= L <= {}, got {}", config_.context_length, tokens.sizes());
  require(!tokens.is_floating_point() && tokens.scalar_type() != at::kBool, "CLIP encode_text: tokens must be integer ids");
  c10::NoGradGuard no_grad;  // not InferenceMode: callers may modify the results in place
  const at::Tensor ids = tokens.to(device_, at::kLong);
  const int64_t n = ids.size(0);
  if (n == 0) return at::empty({0, config_.embed_dim}, ids.options().dtype(at::kFloat));
  require(ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < config_.vocab_size,
          "CLIP encode_text: token ids must lie in [0, {})", config_.vocab_size);
  // OpenAI pools at the end-of-text token, the largest id (first occurrence).
  const at::Tensor eot = ids.argmax(-1);
  // Under the causal mask no position sees a later one, so positions after
  // the last end-of-text token of the batch cannot change the pooled rows.
  const int64_t len = eot.max().item<int64_t>() + 1;
  const at::Tensor used = ids.narrow(1, 0, len);
  at::Tensor x = at::embedding(weights_.at("token_embedding.weight"), used) +
                 weights_.at("positional_embedding").narrow(0, 0, len);
  x = run_blocks(x, text_blocks_, config_.transformer_heads, /*causal=*/true);
  const at::Tensor rows = at::arange(n, eot.options()) * len + eot;
  const at::Tensor pooled = x.reshape({n * len, x.size(2)}).index_select(0, rows);
  const at::Tensor normed = layer_norm(pooled, weights_.at("ln_final.weight"), weights_.at("ln_final.bias"));
  return at::matmul(normed, weights_.at("text_projection")).to(at::kFloat);
}

at::Tensor ClipModel::encode_image_normalized(const at::Tensor& images) const {
  const at::Tensor e = encode_image(images);
  return e / e.norm(2, {1}, true);
}

at::Tensor ClipModel::encode_text_normalized(const at::Tensor& tokens) const {
  const at::Tensor e = encode_text(tokens);
  return e / e.norm(2, {1}, true);
}

double ClipModel::logit_scale() const { return std::exp(weights_.at("logit_scale").to(at::kCPU, at::kDouble).item<double>()); }

at::Tensor ClipModel::logits_per_image(const at::Tensor& images, const at::Tensor& tokens) const {
  return logit_scale() * at::matmul(encode_image_normalized(images), encode_text_normalized(tokens).t());
}


c10::ScalarType clip_compute_dtype(const std::string& name, const c10::Device& device) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") {
    if (device.is_cpu() && !cpu_has_native_bfloat16())
      fmt::print(stderr, "warning: this CPU has no native bfloat16 (AMX / AVX512-BF16); --dtype bfloat16 will be "
                         "slower than float32 here\n");
    return at::kBFloat16;
  }
  require(name == "float16", "unknown model compute type '{}' (float32, bfloat16 or float16)", name);
  require(device.is_cuda(), "--dtype float16 needs --device cuda (on the CPU use float32 or bfloat16)");
  return at::kHalf;
}

}  // namespace semcodec
