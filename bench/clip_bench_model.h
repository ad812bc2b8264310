// What the CLIP benchmarks share: FLOPs of the encoders from their shapes
// (2 per multiply-add) and random weights in the real shapes and roughly
// CLIP's scales.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>

#include "models/clip/clip_config.h"

namespace semcodec::bench {

// One transformer over `len` tokens of width w: qkv 3, out 1, mlp 8 (w x 4w
// twice) = 12 w^2 per token; scores and weighted sum: 2 len w.
inline double transformer_flops(int64_t layers, int64_t len, int64_t w) {
  const double l = static_cast<double>(len), d = static_cast<double>(w);
  return 2.0 * static_cast<double>(layers) * (12.0 * l * d * d + 2.0 * l * l * d);
}

inline double image_flops(const ClipConfig& c) {
  const double patches = static_cast<double>(c.grid_size() * c.grid_size());
  const double patch =
      2.0 * patches * 3.0 * static_cast<double>(c.vision_patch_size * c.vision_patch_size * c.vision_width);
  return patch + transformer_flops(c.vision_layers, c.image_tokens(), c.vision_width) +
         2.0 * static_cast<double>(c.vision_width * c.embed_dim);
}

inline std::map<std::string, at::Tensor> random_weights(const ClipConfig& c) {
  at::manual_seed(0);
  std::map<std::string, at::Tensor> w;
  for (const auto& [name, shape] : clip_parameter_shapes(c)) {
    if (name.find("ln_") != std::string::npos)
      w[name] = name.find("weight") != std::string::npos ? at::ones(shape) : at::zeros(shape);
    else if (name == "logit_scale")
      w[name] = at::full(shape, 4.6052);
    else
      w[name] = at::randn(shape) * 0.02;
  }
  return w;
}

}  // namespace semcodec::bench
