#include "models/clip/clip_weights.h"

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>

#include "data/safetensors.h"
#include "data/torch_archive.h"
#include "data/torch_archive_tensor.h"
#include "util/error.h"

namespace semcodec {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

std::string read_head(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  require(static_cast<bool>(in), "{}: cannot open CLIP weights", path);
  std::string head(n, '\0');
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<size_t>(in.gcount()));
  return head;
}

// Accepts a state dict, or a training checkpoint holding one under
// "state_dict" / "model" (open_clip), with DataParallel's "module." prefix.
std::map<std::string, at::Tensor> tensors_of_state_dict(const TorchValue& root, const std::string& path) {
  require(root.kind == TorchValue::Kind::Dict, "{}: torch.save file holds a {}, not a state dict", path,
          to_string(root.kind));
  const TorchValue* dict = &root;
  for (const char* wrapper : {"state_dict", "model"})
    if (const TorchValue* inner = root.find(wrapper); inner && inner->kind == TorchValue::Kind::Dict) {
      dict = inner;
      break;
    }
  std::map<std::string, at::Tensor> out;
  std::vector<std::string> bad;
  for (const TorchDictEntry& entry : dict->entries) {
    if (entry.key.kind != TorchValue::Kind::String) {
      bad.push_back(fmt::format("a {} key", to_string(entry.key.kind)));
      continue;
    }
    std::string name = entry.key.text;
    if (starts_with(name, "module.")) name = name.substr(7);
    if (entry.value.kind != TorchValue::Kind::Tensor) {
      bad.push_back(fmt::format("{} (a {})", name, to_string(entry.value.kind)));
      continue;
    }
    out[name] = to_at_tensor(entry.value.tensor);
  }
  require(bad.empty(), "{}: state dict entries that are not named tensors: {}", path, fmt::join(bad, ", "));
  return out;
}

// Both through data/torch_archive.h, which executes nothing: a pickle that
// names anything but tensor rebuilding and plain containers is refused, and
// a TorchScript archive's code is never compiled or run.
std::map<std::string, at::Tensor> read_torch_save(const std::string& path) {
  return tensors_of_state_dict(read_torch_archive(path).root, path);
}

std::map<std::string, at::Tensor> read_torchscript(const std::string& path) {
  const TorchArchive archive = read_torch_archive(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, t] : torch_named_tensors(archive.root, path)) out[name] = to_at_tensor(t);
  // OpenAI's archives carry their sizes as int64 buffers; build_model drops
  // them. They must agree with the sizes the weights imply.
  const std::array<const char*, 3> size_buffers = {"input_resolution", "context_length", "vocab_size"};
  std::map<std::string, int64_t> sizes;
  for (const char* key : size_buffers) {
    auto it = out.find(key);
    if (it == out.end()) continue;
    require(it->second.numel() == 1 && !it->second.is_floating_point(), "{}: buffer {} is not an integer scalar", path,
            key);
    sizes[key] = it->second.item<int64_t>();
    out.erase(it);
  }
  if (!sizes.empty()) {
    const ClipConfig c = infer_clip_config(out, path);
    const std::map<std::string, int64_t> implied = {
        {"input_resolution", c.image_resolution}, {"context_length", c.context_length}, {"vocab_size", c.vocab_size}};
    for (const auto& [key, value] : sizes)
      require(value == implied.at(key), "{}: buffer {} = {} but the weights imply {}", path, key, value, implied.at(key));
  }
  return out;
}

bool is_hugging_face(const std::map<std::string, at::Tensor>& w) {
  for (const auto& [name, t] : w)
    if (starts_with(name, "vision_model.") || starts_with(name, "text_model.")) return true;
  return false;
}

// Per-block names: OpenAI suffix -> Hugging Face suffix (in_proj handled apart).
const std::vector<std::pair<std::string, std::string>>& block_names() {
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"attn.out_proj.weight", "self_attn.out_proj.weight"}, {"attn.out_proj.bias", "self_attn.out_proj.bias"},
      {"ln_1.weight", "layer_norm1.weight"},                 {"ln_1.bias", "layer_norm1.bias"},
      {"mlp.c_fc.weight", "mlp.fc1.weight"},                 {"mlp.c_fc.bias", "mlp.fc1.bias"},
      {"mlp.c_proj.weight", "mlp.fc2.weight"},               {"mlp.c_proj.bias", "mlp.fc2.bias"},
      {"ln_2.weight", "layer_norm2.weight"},                 {"ln_2.bias", "layer_norm2.bias"}};
  return names;
}

// Top-level names: OpenAI -> Hugging Face, and whether the matrix is transposed.
struct TopName {
  const char* openai;
  const char* hf;
  bool transposed;
};
constexpr std::array<TopName, 14> kTopNames = {{
    {"positional_embedding", "text_model.embeddings.position_embedding.weight", false},
    {"token_embedding.weight", "text_model.embeddings.token_embedding.weight", false},
    {"ln_final.weight", "text_model.final_layer_norm.weight", false},
    {"ln_final.bias", "text_model.final_layer_norm.bias", false},
    {"text_projection", "text_projection.weight", true},
    {"logit_scale", "logit_scale", false},
    {"visual.class_embedding", "vision_model.embeddings.class_embedding", false},
    {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight", false},
    {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight", false},
    {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight", false},  // sic: Hugging Face's spelling
    {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias", false},
    {"visual.ln_post.weight", "vision_model.post_layernorm.weight", false},
    {"visual.ln_post.bias", "vision_model.post_layernorm.bias", false},
    {"visual.proj", "visual_projection.weight", true},
}};

struct BlockPrefix {
  const char* openai;
  const char* hf;
};
constexpr std::array<BlockPrefix, 2> kBlockPrefixes = {{{"visual.transformer.resblocks.", "vision_model.encoder.layers."},
                                                        {"transformer.resblocks.", "text_model.encoder.layers."}}};

// "<prefix><digits>.<rest>" -> (digits, rest)
std::optional<std::pair<std::string, std::string>> split_block(const std::string& name, const std::string& prefix) {
  if (!starts_with(name, prefix)) return std::nullopt;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return std::nullopt;
  const std::string index = name.substr(prefix.size(), dot - prefix.size());
  if (index.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::make_pair(index, name.substr(dot + 1));
}

}  // namespace

const char* to_string(ClipWeightFormat format) {
  switch (format) {
    case ClipWeightFormat::TorchSave: return "torch.save state dict";
    case ClipWeightFormat::TorchScript: return "TorchScript archive";
    case ClipWeightFormat::Safetensors: return "safetensors";
  }
  return "?";
}

ClipWeightFormat detect_clip_weight_format(const std::string& path) {
  require(std::filesystem::is_regular_file(path), "{}: CLIP weights file not found", path);
  const std::string head = read_head(path, 16);
  if (head.size() >= 4 && head.compare(0, 4, "PK\x03\x04") == 0)
    return probe_torch_archive(path) == TorchArchiveKind::TorchScript ? ClipWeightFormat::TorchScript
                                                                       : ClipWeightFormat::TorchSave;
  // Pickle protocol 2 followed by torch.save's legacy magic number.
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x80 && head[1] == '\x02')
    fail("{}: legacy (pre-1.6) torch.save format; re-save it with a current PyTorch (torch.save(torch.load(f), f))",
         path);
  if (head.size() >= 9) {
    uint64_t header_size = 0;
    std::memcpy(&header_size, head.data(), 8);  // little-endian hosts only, as the safetensors reader
    if (header_size >= 2 && head[8] == '{') return ClipWeightFormat::Safetensors;
  }
  fail("{}: not CLIP weights (expected a torch.save zip, an OpenAI TorchScript archive or safetensors)", path);
}

std::map<std::string, at::Tensor> clip_weights_from_hugging_face(const std::map<std::string, at::Tensor>& hf) {
  std::map<std::string, at::Tensor> out;
  std::map<std::string, const TopName*> top;
  for (const TopName& t : kTopNames) top[t.hf] = &t;
  // in_proj parts: OpenAI name -> {q, k, v} with their Hugging Face names.
  std::map<std::string, std::array<std::pair<std::string, at::Tensor>, 3>> qkv;
  for (const auto& [name, tensor] : hf) {
    if (name == "vision_model.embeddings.position_ids" || name == "text_model.embeddings.position_ids") continue;
    if (auto it = top.find(name); it != top.end()) {
      const bool transpose = it->second->transposed && tensor.dim() == 2;
      out[it->second->openai] = transpose ? tensor.t().contiguous() : tensor;
      continue;
    }
    bool mapped = false;
    for (const BlockPrefix& prefix : kBlockPrefixes) {
      const auto parts = split_block(name, prefix.hf);
      if (!parts) continue;
      const std::string openai_block = prefix.openai + parts->first + ".";
      const std::string& rest = parts->second;
      for (const auto& [openai, hf_suffix] : block_names())
        if (rest == hf_suffix) {
          out[openai_block + openai] = tensor;
          mapped = true;
        }
      static const std::regex qkv_name(R"(self_attn\.([qkv])_proj\.(weight|bias))");
      std::smatch m;
      if (!mapped && std::regex_match(rest, m, qkv_name)) {
        const int slot = m[1] == "q" ? 0 : m[1] == "k" ? 1 : 2;
        qkv[openai_block + "attn.in_proj_" + m[2].str()][static_cast<size_t>(slot)] = {name, tensor};
        mapped = true;
      }
    }
    if (!mapped) out[name] = tensor;  // reported as unexpected
  }
  for (const auto& [openai, parts] : qkv) {
    bool compatible = true;
    for (const auto& [name, t] : parts)
      compatible = compatible && t.defined() && t.dim() == parts[0].second.dim() &&
                   t.sizes().slice(1).equals(parts[0].second.sizes().slice(1)) && t.scalar_type() == parts[0].second.scalar_type();
    if (compatible) {
      out[openai] = at::cat({parts[0].second, parts[1].second, parts[2].second}, 0);
    } else {
      for (const auto& [name, t] : parts)
        if (t.defined()) out[name] = t;  // in_proj is then reported missing
    }
  }
  return out;
}

std::string clip_hugging_face_name(const std::string& openai_name) {
  for (const TopName& t : kTopNames)
    if (openai_name == t.openai) return t.hf;
  for (const BlockPrefix& prefix : kBlockPrefixes) {
    const auto parts = split_block(openai_name, prefix.openai);
    if (!parts) continue;
    const std::string hf_block = prefix.hf + parts->first + ".";
    if (parts->second == "attn.in_proj_weight") return hf_block + "self_attn.{q,k,v}_proj.weight";
    if (parts->second == "attn.in_proj_bias") return hf_block + "self_attn.{q,k,v}_proj.bias";
    for (const auto& [openai, hf_suffix] : block_names())
      if (parts->second == openai) return hf_block + hf_suffix;
  }
  return openai_name;
}

std::map<std::string, at::Tensor> read_clip_weights(const std::string& path) {
  switch (detect_clip_weight_format(path)) {
    case ClipWeightFormat::TorchSave: return read_torch_save(path);
    case ClipWeightFormat::TorchScript: return read_torchscript(path);
    case ClipWeightFormat::Safetensors: {
      std::map<std::string, at::Tensor> tensors = read_safetensors(path).tensors;
      return is_hugging_face(tensors) ? clip_weights_from_hugging_face(tensors) : tensors;
    }
  }
  fail("{}: unknown CLIP weight format", path);
}

ClipModel load_clip(const std::string& path) {
  const ClipWeightFormat format = detect_clip_weight_format(path);
  std::map<std::string, at::Tensor> weights;
  bool hugging_face = false;
  if (format == ClipWeightFormat::Safetensors) {
    std::map<std::string, at::Tensor> tensors = read_safetensors(path).tensors;
    hugging_face = is_hugging_face(tensors);
    weights = hugging_face ? clip_weights_from_hugging_face(tensors) : std::move(tensors);
  } else {
    weights = read_clip_weights(path);
  }
  const std::string source = fmt::format("{} ({})", path, hugging_face ? "Hugging Face safetensors" : to_string(format));
  const ClipNameDisplay display = hugging_face ? &clip_hugging_face_name : nullptr;
  const ClipConfig config = infer_clip_config(weights, source, display);
  validate_clip_weights(weights, config, source, display);
  return ClipModel(weights, source);
}

}  // namespace semcodec
