// The native CLIP on a GPU against OpenAI's goldens (the clip-tiny fixture):
// float32 within the README's tolerance, float16 / bfloat16 within their
// rounding. Skipped without CUDA (see cuda_support.h).
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include "cuda_support.h"
#include "models/clip/clip_model.h"
#include "models/clip/clip_weights.h"
#include "test_clip_fixture.h"

using namespace semcodec;
using semcodec::test::agreement;
using semcodec::test::clip_fixture;
using semcodec::test::read_npy_tensor;

namespace {
struct Goldens {
  std::string weights;
  at::Tensor images, tokens, image_embeddings, text_embeddings;
};

Goldens goldens() {
  Goldens g;
  g.weights = clip_fixture("model/tiny_state_dict.pt");
  g.images = read_npy_tensor(clip_fixture("goldens/image_input.npy"));
  g.tokens = read_npy_tensor(clip_fixture("goldens/text_tokens.npy"));
  g.image_embeddings = read_npy_tensor(clip_fixture("goldens/encode_image.npy"));
  g.text_embeddings = read_npy_tensor(clip_fixture("goldens/encode_text.npy"));
  return g;
}
}  // namespace

TEST_CASE("CUDA: CLIP in float32 on the GPU matches OpenAI's goldens", "[clip][cuda]") {
  if (!test::cuda_present()) return;
  const Goldens g = goldens();
  ClipModel model = load_clip(g.weights);
  model.to(c10::Device("cuda:0"), at::kFloat);
  // CPU inputs: encode_image / encode_text move them to the model's device.
  const at::Tensor image = model.encode_image(g.images), text = model.encode_text(g.tokens);
  CHECK(image.device().is_cuda());
  for (const auto& [actual, golden, what] :
       {std::tuple{image, g.image_embeddings, "image"}, std::tuple{text, g.text_embeddings, "text"}}) {
    const auto a = agreement(actual, golden);
    INFO(what << ": relative " << a.relative() << ", min row cosine " << a.min_row_cosine);
    CHECK(a.relative() <= 1e-4);
    CHECK(a.min_row_cosine >= 0.99999);
  }
}

TEST_CASE("CUDA: CLIP in float16 and bfloat16 stays within their rounding of the goldens", "[clip][cuda]") {
  if (!test::cuda_present()) return;
  const Goldens g = goldens();
  for (const at::ScalarType dtype : {at::kHalf, at::kBFloat16}) {
    ClipModel model = load_clip(g.weights);
    model.to(c10::Device("cuda:0"), dtype);
    const at::Tensor image = model.encode_image(g.images), text = model.encode_text(g.tokens);
    CHECK(image.scalar_type() == at::kFloat);  // embeddings come back as float32 whatever the compute type
    for (const auto& [actual, golden, what] :
         {std::tuple{image, g.image_embeddings, "image"}, std::tuple{text, g.text_embeddings, "text"}}) {
      const auto a = agreement(actual, golden);
      INFO(c10::toString(dtype) << " " << what << ": relative " << a.relative() << ", min row cosine "
                                << a.min_row_cosine);
      CHECK(a.min_row_cosine >= 0.995);
      CHECK(a.max_abs_diff > 0);  // it did compute in the narrow type
    }
  }
}
