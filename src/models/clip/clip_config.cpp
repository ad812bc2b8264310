#include "models/clip/clip_config.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <set>

#include "util/error.h"
#include "util/fmt_shape.h"

namespace semcodec {

namespace {

using Shape = std::vector<int64_t>;

std::string shape_text(c10::ArrayRef<int64_t> s) { return fmt::format("{}", s); }

void add_transformer(std::vector<std::pair<std::string, Shape>>& out, const std::string& prefix, int64_t width,
                     int64_t layers) {
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = fmt::format("{}resblocks.{}.", prefix, i);
    out.push_back({p + "attn.in_proj_weight", {3 * width, width}});
    out.push_back({p + "attn.in_proj_bias", {3 * width}});
    out.push_back({p + "attn.out_proj.weight", {width, width}});
    out.push_back({p + "attn.out_proj.bias", {width}});
    out.push_back({p + "ln_1.weight", {width}});
    out.push_back({p + "ln_1.bias", {width}});
    out.push_back({p + "mlp.c_fc.weight", {4 * width, width}});
    out.push_back({p + "mlp.c_fc.bias", {4 * width}});
    out.push_back({p + "mlp.c_proj.weight", {width, 4 * width}});
    out.push_back({p + "mlp.c_proj.bias", {width}});
    out.push_back({p + "ln_2.weight", {width}});
    out.push_back({p + "ln_2.bias", {width}});
  }
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string ClipConfig::name() const {
  const auto same = [&](const ClipConfig& o) {
    return o.embed_dim == embed_dim && o.image_resolution == image_resolution &&
           o.vision_patch_size == vision_patch_size && o.vision_width == vision_width &&
           o.vision_layers == vision_layers && o.context_length == context_length && o.vocab_size == vocab_size &&
           o.transformer_width == transformer_width && o.transformer_layers == transformer_layers;
  };
  if (same(vit_b_32())) return "ViT-B/32";
  if (same(vit_b_16())) return "ViT-B/16";
  if (same(vit_l_14())) return "ViT-L/14";
  if (same(vit_l_14_336())) return "ViT-L/14@336px";
  return fmt::format("ViT (patch {}, {} px, vision {}x{}, text {}x{}, embed {})", vision_patch_size, image_resolution,
                     vision_layers, vision_width, transformer_layers, transformer_width, embed_dim);
}

ClipConfig ClipConfig::vit_b_32() { return ClipConfig{}; }

ClipConfig ClipConfig::vit_b_16() {
  ClipConfig c;
  c.vision_patch_size = 16;
  return c;
}

ClipConfig ClipConfig::vit_l_14() {
  ClipConfig c;
  c.embed_dim = 768;
  c.vision_patch_size = 14;
  c.vision_width = 1024;
  c.vision_layers = 24;
  c.vision_heads = 16;
  c.transformer_width = 768;
  c.transformer_heads = 12;
  return c;
}

ClipConfig ClipConfig::vit_l_14_336() {
  ClipConfig c = vit_l_14();
  c.image_resolution = 336;
  return c;
}

std::vector<std::pair<std::string, Shape>> clip_parameter_shapes(const ClipConfig& c) {
  std::vector<std::pair<std::string, Shape>> out;
  out.push_back({"positional_embedding", {c.context_length, c.transformer_width}});
  out.push_back({"text_projection", {c.transformer_width, c.embed_dim}});
  out.push_back({"logit_scale", {}});
  out.push_back({"visual.class_embedding", {c.vision_width}});
  out.push_back({"visual.positional_embedding", {c.image_tokens(), c.vision_width}});
  out.push_back({"visual.proj", {c.vision_width, c.embed_dim}});
  out.push_back({"visual.conv1.weight", {c.vision_width, 3, c.vision_patch_size, c.vision_patch_size}});
  out.push_back({"visual.ln_pre.weight", {c.vision_width}});
  out.push_back({"visual.ln_pre.bias", {c.vision_width}});
  add_transformer(out, "visual.transformer.", c.vision_width, c.vision_layers);
  out.push_back({"visual.ln_post.weight", {c.vision_width}});
  out.push_back({"visual.ln_post.bias", {c.vision_width}});
  add_transformer(out, "transformer.", c.transformer_width, c.transformer_layers);
  out.push_back({"token_embedding.weight", {c.vocab_size, c.transformer_width}});
  out.push_back({"ln_final.weight", {c.transformer_width}});
  out.push_back({"ln_final.bias", {c.transformer_width}});
  return out;
}

ClipConfig infer_clip_config(const std::map<std::string, at::Tensor>& w, const std::string& source,
                             ClipNameDisplay display_name) {
  const auto shown = [&](const std::string& name) { return display_name ? display_name(name) : name; };
  // Keys build_model reads, with the rank each must have.
  const std::vector<std::pair<std::string, int64_t>> needed = {
      {"visual.conv1.weight", 4},    {"visual.positional_embedding", 2}, {"text_projection", 2},
      {"positional_embedding", 2},   {"token_embedding.weight", 2},      {"ln_final.weight", 1}};
  std::vector<std::string> problems;
  for (const auto& [key, rank] : needed) {
    auto it = w.find(key);
    if (it == w.end())
      problems.push_back(fmt::format("missing {}", shown(key)));
    else if (it->second.dim() != rank)
      problems.push_back(fmt::format("{} has shape {} (expected {} dimensions)", shown(key), it->second.sizes(), rank));
  }
  if (w.count("visual.proj") == 0 && w.count("visual.attnpool.c_proj.weight") != 0)
    fail("{}: a ResNet CLIP (visual.attnpool.*); only the ViT variants are supported", source);
  if (!problems.empty())
    fail("{}: not an OpenAI CLIP ViT state dict: {}", source, fmt::join(problems, "; "));

  ClipConfig c;
  const at::Tensor& conv1 = w.at("visual.conv1.weight");
  c.vision_width = conv1.size(0);
  c.vision_patch_size = conv1.size(-1);
  c.vision_heads = c.vision_width / 64;
  std::set<std::string> vision_blocks, text_blocks;
  for (const auto& [key, t] : w) {
    if (starts_with(key, "visual.") && ends_with(key, ".attn.in_proj_weight")) vision_blocks.insert(key);
    if (starts_with(key, "transformer.resblocks.")) {
      const auto begin = std::string("transformer.resblocks.").size();
      text_blocks.insert(key.substr(begin, key.find('.', begin) - begin));
    }
  }
  c.vision_layers = static_cast<int64_t>(vision_blocks.size());
  const int64_t positions = w.at("visual.positional_embedding").size(0);
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<int64_t>(positions - 1, 0)))));
  c.image_resolution = c.vision_patch_size * grid;
  c.embed_dim = w.at("text_projection").size(1);
  c.context_length = w.at("positional_embedding").size(0);
  c.vocab_size = w.at("token_embedding.weight").size(0);
  c.transformer_width = w.at("ln_final.weight").size(0);
  c.transformer_heads = c.transformer_width / 64;
  c.transformer_layers = static_cast<int64_t>(text_blocks.size());
  require(c.vision_width >= 64 && c.transformer_width >= 64 && c.vision_patch_size > 0 && grid > 0,
          "{}: implausible CLIP sizes (vision width {}, text width {}, patch {}, grid {})", source, c.vision_width,
          c.transformer_width, c.vision_patch_size, grid);
  require(c.vision_width % 64 == 0 && c.transformer_width % 64 == 0,
          "{}: widths must be multiples of the head size 64 (vision {}, text {})", source, c.vision_width,
          c.transformer_width);
  return c;
}

void validate_clip_weights(const std::map<std::string, at::Tensor>& w, const ClipConfig& config,
                           const std::string& source, ClipNameDisplay display_name) {
  const auto shown = [&](const std::string& name) { return display_name ? display_name(name) : name; };
  std::vector<std::string> missing, misshaped, unexpected;
  std::set<std::string> known;
  for (const auto& [name, shape] : clip_parameter_shapes(config)) {
    known.insert(name);
    auto it = w.find(name);
    if (it == w.end()) {
      missing.push_back(shown(name));
    } else if (!it->second.sizes().equals(shape)) {
      misshaped.push_back(fmt::format("{} is {} (expected {})", shown(name), shape_text(it->second.sizes()),
                                      shape_text(shape)));
    } else if (!it->second.is_floating_point()) {
      misshaped.push_back(fmt::format("{} has dtype {} (expected floating point)", shown(name),
                                      std::string(c10::toString(it->second.scalar_type()))));
    }
  }
  for (const auto& [name, t] : w)
    if (known.count(name) == 0) unexpected.push_back(shown(name));
  if (missing.empty() && misshaped.empty() && unexpected.empty()) return;
  std::string message = fmt::format("{}: weights do not match CLIP {}:", source, config.name());
  if (!missing.empty()) message += fmt::format("\n  missing ({}): {}", missing.size(), fmt::join(missing, ", "));
  if (!misshaped.empty())
    message += fmt::format("\n  mis-shaped ({}): {}", misshaped.size(), fmt::join(misshaped, ", "));
  if (!unexpected.empty())
    message += fmt::format("\n  unexpected ({}): {}", unexpected.size(), fmt::join(unexpected, ", "));
  throw Error(message);
}

}  // namespace semcodec
