// The three CLIP weight formats (torch.save state dict, OpenAI's TorchScript
// archive layout, Hugging Face safetensors) give identical embeddings, and
// broken files give one error naming the file and listing the problems.
// The archives and the Hugging Face file are written here from the fixture's
// state dict, with their own (inverse) name mapping.
#include <ATen/ATen.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/serialize.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "data/safetensors.h"
#include "models/clip/clip_model.h"
#include "models/clip/clip_weights.h"
#include "test_clip_fixture.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::clip_fixture;
using semcodec::test::read_npy_tensor;
using semcodec::test::TempDir;

namespace {

using Weights = std::map<std::string, at::Tensor>;

void write_torch_save(const std::string& path, const Weights& weights) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, t] : weights) dict.insert(name, t);
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// What OpenAI's convert_weights stores as float16: conv and linear weights
// and biases, attention in_proj, the two projection matrices.
bool stored_as_half(const std::string& name) {
  return name == "visual.conv1.weight" || name == "visual.proj" || name == "text_projection" ||
         name.find(".attn.") != std::string::npos || name.find(".mlp.") != std::string::npos;
}

// A TorchScript module tree with OpenAI's names, dtypes and size buffers.
void write_openai_archive(const std::string& path, const Weights& weights, int64_t input_resolution) {
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module root(c10::QualifiedName("__torch__.clip.model.CLIP"), cu);
  std::map<std::string, torch::jit::Module> modules{{"", root}};
  const auto module_at = [&](const std::string& path_name) {
    std::function<torch::jit::Module(const std::string&)> get = [&](const std::string& p) -> torch::jit::Module {
      if (auto it = modules.find(p); it != modules.end()) return it->second;
      const size_t dot = p.rfind('.');
      torch::jit::Module parent = get(dot == std::string::npos ? "" : p.substr(0, dot));
      std::string type = "__torch__.m";
      for (char c : p) type += c == '.' ? '_' : c;
      torch::jit::Module child(c10::QualifiedName(type), cu);
      parent.register_module(dot == std::string::npos ? p : p.substr(dot + 1), child);
      modules.emplace(p, child);
      return child;
    };
    return get(path_name);
  };
  for (const auto& [name, t] : weights) {
    const size_t dot = name.rfind('.');
    torch::jit::Module owner = module_at(dot == std::string::npos ? "" : name.substr(0, dot));
    owner.register_parameter(dot == std::string::npos ? name : name.substr(dot + 1),
                             t.to(stored_as_half(name) ? at::kHalf : at::kFloat), false);
  }
  root.register_buffer("input_resolution", at::scalar_tensor(input_resolution, at::kLong));
  root.register_buffer("context_length", at::scalar_tensor(77, at::kLong));
  root.register_buffer("vocab_size", at::scalar_tensor(49408, at::kLong));
  root.save(path);
}

// Hugging Face CLIPModel names (transformers' convert_clip_original_pytorch_to_hf).
Weights to_hugging_face(const Weights& w) {
  Weights hf;
  const std::map<std::string, std::string> top = {
      {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
      {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
      {"ln_final.weight", "text_model.final_layer_norm.weight"},
      {"ln_final.bias", "text_model.final_layer_norm.bias"},
      {"logit_scale", "logit_scale"},
      {"visual.class_embedding", "vision_model.embeddings.class_embedding"},
      {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
      {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
      {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"},
      {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"},
      {"visual.ln_post.weight", "vision_model.post_layernorm.weight"},
      {"visual.ln_post.bias", "vision_model.post_layernorm.bias"}};
  const std::map<std::string, std::string> block = {
      {"attn.out_proj.weight", "self_attn.out_proj.weight"}, {"attn.out_proj.bias", "self_attn.out_proj.bias"},
      {"ln_1.weight", "layer_norm1.weight"}, {"ln_1.bias", "layer_norm1.bias"},
      {"mlp.c_fc.weight", "mlp.fc1.weight"}, {"mlp.c_fc.bias", "mlp.fc1.bias"},
      {"mlp.c_proj.weight", "mlp.fc2.weight"}, {"mlp.c_proj.bias", "mlp.fc2.bias"},
      {"ln_2.weight", "layer_norm2.weight"}, {"ln_2.bias", "layer_norm2.bias"}};
  for (const auto& [name, t] : w) {
    if (auto it = top.find(name); it != top.end()) {
      hf[it->second] = t;
      continue;
    }
    if (name == "text_projection") {
      hf["text_projection.weight"] = t.t().contiguous();
      continue;
    }
    if (name == "visual.proj") {
      hf["visual_projection.weight"] = t.t().contiguous();
      continue;
    }
    const bool vision = name.rfind("visual.transformer.resblocks.", 0) == 0;
    const std::string prefix = vision ? "visual.transformer.resblocks." : "transformer.resblocks.";
    REQUIRE(name.rfind(prefix, 0) == 0);
    const size_t dot = name.find('.', prefix.size());
    const std::string layer = name.substr(prefix.size(), dot - prefix.size()), rest = name.substr(dot + 1);
    const std::string hf_block = std::string(vision ? "vision_model" : "text_model") + ".encoder.layers." + layer + ".";
    if (rest == "attn.in_proj_weight" || rest == "attn.in_proj_bias") {
      const std::string kind = ends_with(rest, "weight") ? "weight" : "bias";
      const auto parts = t.chunk(3, 0);
      hf[hf_block + "self_attn.q_proj." + kind] = parts[0].contiguous();
      hf[hf_block + "self_attn.k_proj." + kind] = parts[1].contiguous();
      hf[hf_block + "self_attn.v_proj." + kind] = parts[2].contiguous();
    } else {
      hf[hf_block + block.at(rest)] = t;
    }
  }
  hf["text_model.embeddings.position_ids"] = at::arange(77, at::kLong).unsqueeze(0);
  hf["vision_model.embeddings.position_ids"] = at::arange(17, at::kLong).unsqueeze(0);
  return hf;
}

using semcodec::test::error_of;
struct Embeddings {
  at::Tensor image, text;
};

Embeddings embed(const ClipModel& model) {
  return {model.encode_image(read_npy_tensor(clip_fixture("goldens/image_input.npy"))),
          model.encode_text(read_npy_tensor(clip_fixture("goldens/text_tokens.npy")))};
}

}  // namespace

TEST_CASE("CLIP state dict, TorchScript archive and safetensors give identical embeddings", "[clip][weights]") {
  const std::string fixture = clip_fixture("model/tiny_state_dict.pt");
  CHECK(detect_clip_weight_format(fixture) == ClipWeightFormat::TorchSave);
  const Weights weights = read_clip_weights(fixture);
  CHECK(weights.size() == 62);  // 14 top-level + 2 x 2 blocks x 12
  const Embeddings reference = embed(load_clip(fixture));
  TempDir dir("clip-weights");

  SECTION("OpenAI TorchScript archive: float16 matrices, float32 rest, int64 size buffers") {
    const std::string path = dir.file("ViT-tiny.pt");
    write_openai_archive(path, weights, 56);
    CHECK(detect_clip_weight_format(path) == ClipWeightFormat::TorchScript);
    const Weights read = read_clip_weights(path);
    CHECK(read.size() == weights.size());  // the size buffers are dropped
    CHECK(read.at("visual.conv1.weight").scalar_type() == at::kHalf);
    CHECK(read.at("transformer.resblocks.0.attn.in_proj_bias").scalar_type() == at::kHalf);
    CHECK(read.at("token_embedding.weight").scalar_type() == at::kFloat);
    const Embeddings e = embed(load_clip(path));
    // The fixture's weights were rounded through float16: nothing is lost.
    CHECK(at::equal(e.image, reference.image));
    CHECK(at::equal(e.text, reference.text));

    const std::string wrong = dir.file("wrong-resolution.pt");
    write_openai_archive(wrong, weights, 224);
    const std::string message = error_of([&] { load_clip(wrong); });
    CHECK_THAT(message, Catch::Contains(wrong) && Catch::Contains("input_resolution = 224") &&
                            Catch::Contains("imply 56"));
  }

  SECTION("Hugging Face model.safetensors") {
    const std::string path = dir.file("model.safetensors");
    write_safetensors(path, to_hugging_face(weights));
    CHECK(detect_clip_weight_format(path) == ClipWeightFormat::Safetensors);
    const Embeddings e = embed(load_clip(path));
    CHECK(at::equal(e.image, reference.image));
    CHECK(at::equal(e.text, reference.text));

    Weights partial = to_hugging_face(weights);
    partial.erase("vision_model.post_layernorm.bias");
    partial.erase("text_model.encoder.layers.1.self_attn.k_proj.weight");
    partial["text_model.encoder.layers.0.mlp.fc1.weight"] = at::zeros({512, 64});
    partial["vision_model.extra.weight"] = at::zeros({3});
    const std::string bad = dir.file("partial.safetensors");
    write_safetensors(bad, partial);
    const std::string message = error_of([&] { load_clip(bad); });
    CHECK_THAT(message, Catch::Contains(bad) && Catch::Contains("missing (2)") &&
                            Catch::Contains("vision_model.post_layernorm.bias") &&
                            Catch::Contains("text_model.encoder.layers.1.self_attn.{q,k,v}_proj.weight") &&
                            Catch::Contains("mis-shaped (1): text_model.encoder.layers.0.mlp.fc1.weight is [512, 64] "
                                            "(expected [512, 128])") &&
                            Catch::Contains("vision_model.extra.weight"));

    Weights no_patch = to_hugging_face(weights);
    no_patch.erase("vision_model.embeddings.patch_embedding.weight");
    write_safetensors(bad, no_patch);
    CHECK_THAT(error_of([&] { load_clip(bad); }),
               Catch::Contains("missing vision_model.embeddings.patch_embedding.weight"));
  }

  SECTION("safetensors with OpenAI's names, and a re-saved state dict") {
    const std::string path = dir.file("openai-names.safetensors");
    write_safetensors(path, weights);
    CHECK(at::equal(embed(load_clip(path)).image, reference.image));
    const std::string resaved = dir.file("resaved.pt");
    write_torch_save(resaved, weights);
    CHECK(at::equal(embed(load_clip(resaved)).text, reference.text));
  }
}

TEST_CASE("CLIP state dict with a missing, mis-shaped or unexpected key is rejected with the list", "[clip][weights]") {
  const std::string fixture = clip_fixture("model/tiny_state_dict.pt");
  const Weights weights = read_clip_weights(fixture);
  TempDir dir("clip-weights-bad");

  Weights missing = weights;
  missing.erase("visual.ln_post.bias");
  const std::string missing_path = dir.file("missing.pt");
  write_torch_save(missing_path, missing);
  std::string message = error_of([&] { load_clip(missing_path); });
  CHECK_THAT(message, Catch::Contains(missing_path) && Catch::Contains("missing (1): visual.ln_post.bias"));
  CHECK_THAT(message, !Catch::Contains("mis-shaped") && !Catch::Contains("unexpected"));

  Weights misshaped = weights;
  misshaped["transformer.resblocks.1.mlp.c_fc.weight"] = at::zeros({512, 127});
  misshaped["extra.bias"] = at::zeros({2});
  const std::string misshaped_path = dir.file("misshaped.pt");
  write_torch_save(misshaped_path, misshaped);
  message = error_of([&] { load_clip(misshaped_path); });
  CHECK_THAT(message, Catch::Contains(misshaped_path) &&
                          Catch::Contains("mis-shaped (1): transformer.resblocks.1.mlp.c_fc.weight is [512, 127] "
                                          "(expected [512, 128])") &&
                          Catch::Contains("unexpected (1): extra.bias"));

  Weights no_conv = weights;
  no_conv.erase("visual.conv1.weight");
  const std::string no_conv_path = dir.file("no-conv.pt");
  write_torch_save(no_conv_path, no_conv);
  CHECK_THAT(error_of([&] { load_clip(no_conv_path); }),
             Catch::Contains(no_conv_path) && Catch::Contains("missing visual.conv1.weight"));
}

TEST_CASE("CLIP weight files that are no weights are rejected", "[clip][weights]") {
  TempDir dir("clip-weights-garbage");
  std::ofstream(dir.file("empty.pt")).flush();
  CHECK_THAT(error_of([&] { load_clip(dir.file("empty.pt")); }), Catch::Contains("not CLIP weights"));
  std::ofstream(dir.file("text.pt")) << "hello world, no weights here";
  CHECK_THAT(error_of([&] { load_clip(dir.file("text.pt")); }), Catch::Contains("not CLIP weights"));
  std::ofstream(dir.file("legacy.pt"), std::ios::binary) << std::string("\x80\x02\x8a\x0a" "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14);
  CHECK_THAT(error_of([&] { load_clip(dir.file("legacy.pt")); }), Catch::Contains("legacy"));
  std::ofstream(dir.file("zip.pt"), std::ios::binary) << std::string("PK\x03\x04garbage", 11);
  CHECK_THAT(error_of([&] { load_clip(dir.file("zip.pt")); }), Catch::Contains(dir.file("zip.pt")));
  CHECK_THAT(error_of([&] { load_clip(dir.file("absent.pt")); }), Catch::Contains("not found"));
  // A torch.save file holding something else than a state dict.
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(at::zeros({2})));
  std::ofstream(dir.file("tensor.pt"), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  CHECK_THAT(error_of([&] { load_clip(dir.file("tensor.pt")); }), Catch::Contains("not a state dict"));
}
