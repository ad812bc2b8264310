// The hyper-parameters of an OpenAI CLIP ViT, and the parameter names and
// shapes they imply. Checkpoints carry no config: like OpenAI's build_model,
// every size is read off the weights' shapes, so one loader serves B/32, B/16,
// L/14, L/14@336px and any other ViT trained with OpenAI's code.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace semcodec {

struct ClipConfig {
  int64_t embed_dim = 512;
  // Vision transformer.
  int64_t image_resolution = 224;
  int64_t vision_patch_size = 32;
  int64_t vision_width = 768;
  int64_t vision_layers = 12;
  int64_t vision_heads = 12;  // vision_width / 64, as OpenAI's build_model
  // Text transformer.
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  int64_t transformer_width = 512;
  int64_t transformer_layers = 12;
  int64_t transformer_heads = 8;  // transformer_width / 64

  int64_t grid_size() const { return image_resolution / vision_patch_size; }
  int64_t image_tokens() const { return grid_size() * grid_size() + 1; }  // patches + class token
  // "ViT-B/32", "ViT-L/14@336px", ... or a description of the sizes.
  std::string name() const;

  // OpenAI's released architectures (their weight shapes).
  static ClipConfig vit_b_32();
  static ClipConfig vit_b_16();
  static ClipConfig vit_l_14();
  static ClipConfig vit_l_14_336();
};

// Every parameter of the model under OpenAI's names with its shape, in
// OpenAI's state-dict order.
std::vector<std::pair<std::string, std::vector<int64_t>>> clip_parameter_shapes(const ClipConfig& config);

// Reads the sizes off OpenAI-named weights exactly as OpenAI's build_model
// does (vision width from conv1, layer counts from the resblock keys, grid
// from the positional embedding, heads = width / 64, ...). `source` names
// the file in errors. Throws when a key it needs is absent (listing them).
// `display_name` maps an OpenAI name to the name the file uses (for Hugging
// Face files) in messages; identity when null.
using ClipNameDisplay = std::string (*)(const std::string& openai_name);
ClipConfig infer_clip_config(const std::map<std::string, at::Tensor>& weights, const std::string& source,
                             ClipNameDisplay display_name = nullptr);

// Checks that `weights` holds exactly the parameters of `config` with the
// right shapes. One error names the file and lists every missing,
// unexpected and mis-shaped key (named through `display_name`).
void validate_clip_weights(const std::map<std::string, at::Tensor>& weights, const ClipConfig& config,
                           const std::string& source, ClipNameDisplay display_name = nullptr);

}  // namespace semcodec
