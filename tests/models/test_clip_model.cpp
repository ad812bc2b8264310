// The native CLIP against OpenAI's reference code: embeddings and logits of
// the clip-tiny fixture's goldens (computed by OpenAI's model.py in float32),
// the sizes build_model infers, and OpenAI's published parameter count.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/clip/clip_config.h"
#include "models/clip/clip_model.h"
#include "models/clip/clip_weights.h"
#include "test_clip_fixture.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::agreement;
using semcodec::test::clip_fixture;
using semcodec::test::read_npy_tensor;

namespace {

// Weights of the given shapes without memory (sizes are all validation reads).
std::map<std::string, at::Tensor> shaped_weights(const ClipConfig& config) {
  std::map<std::string, at::Tensor> w;
  for (const auto& [name, shape] : clip_parameter_shapes(config)) w[name] = at::zeros({}).expand(shape);
  return w;
}

int64_t parameter_count(const ClipConfig& config) {
  int64_t total = 0;
  for (const auto& [name, shape] : clip_parameter_shapes(config)) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    total += n;
  }
  return total;
}

// The README's tolerance: max abs diff <= 1e-4 * max|golden|, row cosine >= 0.99999.
void check_golden(const at::Tensor& actual, const std::string& golden_path) {
  const at::Tensor golden = read_npy_tensor(golden_path);
  REQUIRE(actual.sizes() == golden.sizes());
  const auto a = agreement(actual, golden);
  INFO(golden_path << ": max abs diff " << a.max_abs_diff << " (relative " << a.relative() << "), min row cosine "
                   << a.min_row_cosine);
  CHECK(a.relative() <= 1e-5);  // the target; the README asks 1e-4
  CHECK(a.min_row_cosine >= 0.99999);
}

}  // namespace

TEST_CASE("CLIP sizes are inferred from the fixture's weights as build_model does", "[clip]") {
  const std::string weights = clip_fixture("model/tiny_state_dict.pt");
  const std::string config_path = clip_fixture("model/tiny_config.json");
  nlohmann::json expected;
  std::ifstream(config_path) >> expected;
  const ClipModel model = load_clip(weights);
  const ClipConfig& c = model.config();
  CHECK(c.embed_dim == expected["embed_dim"].get<int64_t>());
  CHECK(c.image_resolution == expected["image_resolution"].get<int64_t>());
  CHECK(model.image_resolution() == expected["image_resolution"].get<int64_t>());
  CHECK(c.vision_layers == expected["vision_layers"].get<int64_t>());
  CHECK(c.vision_width == expected["vision_width"].get<int64_t>());
  CHECK(c.vision_patch_size == expected["vision_patch_size"].get<int64_t>());
  CHECK(c.context_length == expected["context_length"].get<int64_t>());
  CHECK(c.vocab_size == expected["vocab_size"].get<int64_t>());
  CHECK(c.transformer_width == expected["transformer_width"].get<int64_t>());
  CHECK(c.transformer_heads == expected["transformer_heads"].get<int64_t>());
  CHECK(c.transformer_layers == expected["transformer_layers"].get<int64_t>());
  CHECK(c.vision_heads == 2);  // width 128 / 64
}

TEST_CASE("CLIP encode_image matches OpenAI's goldens", "[clip]") {
  const std::string weights = clip_fixture("model/tiny_state_dict.pt");
  const ClipModel model = load_clip(weights);
  const at::Tensor images = read_npy_tensor(clip_fixture("goldens/image_input.npy"));
  check_golden(model.encode_image(images), clip_fixture("goldens/encode_image.npy"));
  // Real photographs after OpenAI's preprocessing at 56 px.
  for (const std::string name : {"coco831", "clip_png"}) {
    const at::Tensor pixels = read_npy_tensor(clip_fixture("goldens/e2e_" + name + "_preprocessed.npy"));
    check_golden(model.encode_image(pixels.dim() == 3 ? pixels.unsqueeze(0) : pixels),
                 clip_fixture("goldens/e2e_" + name + "_encode_image.npy"));
  }
}

TEST_CASE("CLIP encode_text matches OpenAI's goldens", "[clip]") {
  const std::string weights = clip_fixture("model/tiny_state_dict.pt");
  const ClipModel model = load_clip(weights);
  const at::Tensor tokens = read_npy_tensor(clip_fixture("goldens/text_tokens.npy"));
  check_golden(model.encode_text(tokens), clip_fixture("goldens/encode_text.npy"));
  // Pooling and the causal mask do not depend on the padding after the end-of-text token.
  const at::Tensor one = model.encode_text(tokens.narrow(0, 0, 1));
  CHECK(at::allclose(one, model.encode_text(tokens).narrow(0, 0, 1), 1e-5, 1e-6));
}

TEST_CASE("CLIP logits_per_image matches OpenAI's goldens", "[clip]") {
  const std::string weights = clip_fixture("model/tiny_state_dict.pt");
  const ClipModel model = load_clip(weights);
  const at::Tensor logits = model.logits_per_image(read_npy_tensor(clip_fixture("goldens/image_input.npy")),
                                                   read_npy_tensor(clip_fixture("goldens/text_tokens.npy")));
  const at::Tensor golden = read_npy_tensor(clip_fixture("goldens/logits_per_image.npy"));
  REQUIRE(logits.sizes() == golden.sizes());
  const double diff = (logits.to(at::kDouble) - golden.to(at::kDouble)).abs().max().item<double>();
  INFO("max abs diff " << diff << ", max |golden| " << golden.abs().max().item<double>());
  CHECK(diff <= 1e-4 * golden.abs().max().item<double>());
  // Normalized embeddings: unit rows.
  const at::Tensor unit = model.encode_image_normalized(read_npy_tensor(clip_fixture("goldens/image_input.npy")));
  CHECK(at::allclose(unit.norm(2, {1}), at::ones({unit.size(0)}), 1e-6, 1e-6));
}

TEST_CASE("CLIP sizes of OpenAI's released ViTs are inferred from their shapes", "[clip]") {
  for (const ClipConfig& c :
       {ClipConfig::vit_b_32(), ClipConfig::vit_b_16(), ClipConfig::vit_l_14(), ClipConfig::vit_l_14_336()}) {
    const ClipConfig inferred = infer_clip_config(shaped_weights(c), "test");
    CHECK(inferred.name() == c.name());
    CHECK(inferred.image_resolution == c.image_resolution);
    CHECK(inferred.vision_heads == c.vision_heads);
    CHECK(inferred.transformer_heads == c.transformer_heads);
    CHECK(inferred.vision_layers == c.vision_layers);
    CHECK_NOTHROW(validate_clip_weights(shaped_weights(c), inferred, "test"));
  }
  CHECK(ClipConfig::vit_l_14_336().name() == "ViT-L/14@336px");
  // The counts OpenAI's notebooks print ("Model parameters: ...").
  CHECK(parameter_count(ClipConfig::vit_b_32()) == 151277313);
  CHECK(parameter_count(ClipConfig::vit_b_16()) == 149620737);
  CHECK(parameter_count(ClipConfig::vit_l_14()) == 427616513);
  CHECK(parameter_count(ClipConfig::vit_l_14_336()) == 427944193);
}

TEST_CASE("CLIP rejects inputs of the wrong shape with a message", "[clip]") {
  const std::string weights = clip_fixture("model/tiny_state_dict.pt");
  const ClipModel model = load_clip(weights);
  CHECK_THROWS_AS(model.encode_image(at::zeros({1, 3, 224, 224})), Error);
  CHECK_THROWS_AS(model.encode_text(at::zeros({1, 78}, at::kLong)), Error);
  CHECK_THROWS_AS(model.encode_text(at::full({1, 5}, 49408, at::kLong)), Error);
  CHECK(model.encode_text(at::zeros({0, 77}, at::kLong)).sizes() == at::IntArrayRef({0, 32}));
}
