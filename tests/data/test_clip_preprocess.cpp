// OpenAI's CLIP preprocessing against goldens made with its own code
// (tests/fixtures/clip-tiny, Pillow 9.4 + torchvision 0.14), and Pillow's
// resampling rules checked by hand on small images.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "data/clip_preprocess.h"
#include "data/image_decode.h"
#include "data/npy.h"
#include "test_support.h"

using namespace semcodec;

namespace {

std::string clip_fixture(const std::string& rel) { return test::fixture_path("clip-tiny/" + rel); }

// OpenAI's Normalize after ToTensor, on a [H, W, 3] uint8 image: the float32
// goldens of the fixture's source equal this to 1e-6 (make_clip_tiny.py).
at::Tensor openai_normalize(const at::Tensor& hwc_u8) {
  const at::Tensor x = hwc_u8.to(at::kFloat).div(255.0f).permute({2, 0, 1});
  const at::Tensor mean = at::tensor({0.48145466f, 0.4578275f, 0.40821073f}).view({3, 1, 1});
  const at::Tensor std = at::tensor({0.26862954f, 0.26130258f, 0.27577711f}).view({3, 1, 1});
  return (x - mean) / std;
}

at::Tensor load_npy(const std::string& path) { return npy_to_tensor(read_npy(path), true, path); }

at::Tensor image_hwc(const Image& im) {
  REQUIRE(im.mode == PixelMode::RGB);
  return at::from_blob(const_cast<uint8_t*>(im.pixels.data()), {im.height, im.width, 3}, at::kByte).clone();
}

// Counts differing bytes and the largest difference.
struct ByteDiff {
  int64_t differing = 0, max_abs = 0, total = 0;
};
ByteDiff compare_u8(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  at::Tensor d = (a.to(at::kInt) - b.to(at::kInt)).abs();
  return {d.gt(0).sum().item<int64_t>(), d.max().item<int64_t>(), d.numel()};
}

Image gray_image(int64_t w, int64_t h, std::vector<uint8_t> px) {
  Image im;
  im.mode = PixelMode::L;
  im.width = w;
  im.height = h;
  im.pixels = std::move(px);
  return im;
}

}  // namespace

TEST_CASE("JPEG decoding equals libjpeg's integer IDCT output PIL returns", "[image][golden]") {
  const std::string jpg = clip_fixture("images/coco_val2014_831.jpg");
  const std::string ref = clip_fixture("preprocess/coco831_decoded_u8.npy");
  Image im = read_image(jpg);
  CHECK(im.mode == PixelMode::RGB);
  ByteDiff d = compare_u8(image_hwc(im), load_npy(ref));
  INFO("differing bytes " << d.differing << " of " << d.total << ", max " << d.max_abs);
  CHECK(d.differing == 0);
}

TEST_CASE("CLIP preprocessing at 224 px matches OpenAI's transform", "[image][golden]") {
  struct Case {
    const char* image;
    const char* stem;
    PixelMode mode;
  };
  for (const Case& c : {Case{"coco_val2014_831.jpg", "coco831_224", PixelMode::RGB},
                        Case{"clip.png", "clip_png_224", PixelMode::RGBA}}) {
    const std::string img_path = clip_fixture(std::string("images/") + c.image);
    const std::string u8_path = clip_fixture(std::string("preprocess/") + c.stem + "_rgb_u8.npy");
    SECTION(c.stem) {
      Image im = read_image(img_path);
      CHECK(im.mode == c.mode);
      ClipPreprocessConfig cfg;
      cfg.resolution = 224;
      Image rgb = clip_resize_crop_rgb(im, cfg);
      ByteDiff d = compare_u8(image_hwc(rgb), load_npy(u8_path));
      INFO(c.stem << ": differing bytes " << d.differing << " of " << d.total << ", max " << d.max_abs);
      // Pillow's arithmetic is reproduced exactly; the fixture README allows +-1 on a few pixels.
      CHECK(d.differing == 0);
      CHECK(d.max_abs <= 1);

      at::Tensor x = clip_preprocess(im, cfg);
      at::Tensor golden = openai_normalize(load_npy(u8_path));
      REQUIRE(x.sizes() == golden.sizes());
      const double max_abs = (x - golden).abs().max().item<double>();
      const double mean_abs = (x - golden).abs().mean().item<double>();
      INFO(c.stem << ": normalized max abs " << max_abs << ", mean abs " << mean_abs);
      CHECK(max_abs <= 1e-6);
      CHECK(mean_abs < 0.002);
    }
  }
}

TEST_CASE("CLIP preprocessing at 56 px matches the end-to-end goldens", "[image][golden]") {
  for (auto [image, golden_name] : {std::pair<const char*, const char*>{"coco_val2014_831.jpg", "e2e_coco831_preprocessed.npy"},
                                    {"clip.png", "e2e_clip_png_preprocessed.npy"}}) {
    const std::string img_path = clip_fixture(std::string("images/") + image);
    const std::string g_path = clip_fixture(std::string("goldens/") + golden_name);
    ClipPreprocessConfig cfg;
    cfg.resolution = 56;
    at::Tensor batch = clip_preprocess_batch({read_image(img_path)}, cfg);
    at::Tensor golden = load_npy(g_path);
    if (golden.dim() == 3) golden = golden.unsqueeze(0);
    REQUIRE(batch.sizes() == golden.sizes());
    const double max_abs = (batch - golden).abs().max().item<double>();
    INFO(golden_name << ": max abs " << max_abs);
    CHECK(max_abs <= 1e-6);
  }
}

TEST_CASE("torchvision's resize and center-crop size rules", "[image]") {
  // int(R * long / short), the short side becomes R.
  CHECK(shortest_side_size(500, 333, 224) == std::array<int64_t, 2>{336, 224});  // 224*500/333 = 336.33
  CHECK(shortest_side_size(333, 500, 224) == std::array<int64_t, 2>{224, 336});
  CHECK(shortest_side_size(640, 480, 336) == std::array<int64_t, 2>{448, 336});
  CHECK(shortest_side_size(100, 100, 224) == std::array<int64_t, 2>{224, 224});
  CHECK(shortest_side_size(1, 3, 2) == std::array<int64_t, 2>{2, 6});
  // CenterCrop offsets use Python's round (half to even): (227-224)/2 = 1.5 -> 2, (225-224)/2 = 0.5 -> 0.
  Image im = gray_image(227, 225, std::vector<uint8_t>(227 * 225));
  for (int64_t y = 0; y < 225; ++y)
    for (int64_t x = 0; x < 227; ++x) im.pixels[y * 227 + x] = static_cast<uint8_t>((x * 7 + y * 3) % 251);
  // A 227x225 image at R=225: resize to (227, 225) is a no-op, then crop 225 from x = round(1.0) = 1.
  ClipPreprocessConfig cfg;
  cfg.resolution = 225;
  Image out = clip_resize_crop_rgb(im, cfg);
  REQUIRE(out.width == 225);
  CHECK(out.pixels[0] == im.pixels[1]);
  // At R=224 the image is resized to 225x224? No: short side 225 -> 224, long int(224*227/225) = 225;
  // crop left = round(0.5) = 0 (half to even), top = 0.
  cfg.resolution = 224;
  Image full = resize_image(im, 225, 224, ResampleFilter::Bicubic);
  Image cropped = clip_resize_crop_rgb(im, cfg);
  for (int64_t y = 0; y < 224; ++y)
    for (int64_t x = 0; x < 224; ++x) REQUIRE(cropped.pixels[(y * 224 + x) * 3] == full.pixels[y * 225 + x]);
}

TEST_CASE("Pillow's antialiased resampling by hand", "[image]") {
  SECTION("halving a constant image keeps it constant") {
    Image im = gray_image(8, 8, std::vector<uint8_t>(64, 77));
    for (auto f : {ResampleFilter::Bicubic, ResampleFilter::Bilinear}) {
      Image out = resize_image(im, 4, 4, f);
      for (uint8_t v : out.pixels) CHECK(v == 77);
    }
  }
  SECTION("bilinear 4 -> 2 averages pairs with a stretched triangle") {
    // scale 2: support 2, output 0 has center 1.0, taps x = 0..2 with weights
    // tri((x - 1 + 0.5) / 2) = 0.75, 0.75, 0.25 -> normalized 3/7, 3/7, 1/7.
    Image im = gray_image(4, 1, {0, 70, 140, 210});
    Image out = resize_image(im, 2, 1, ResampleFilter::Bilinear);
    // 70*3/7 + 140/7 = 50 ; fixed point rounds to nearest.
    CHECK(int(out.pixels[0]) == 50);
    // output 1: center 3.0, xmin = int(3 - 2 + 0.5) = 1, xmax clipped to 4: taps 1..3 with
    // tri(-0.75), tri(-0.25), tri(0.25) = 0.25, 0.75, 0.75 -> (70 + 3*140 + 3*210) / 7 = 160.
    CHECK(int(out.pixels[1]) == 160);
  }
  SECTION("16-bit gray (mode I) uses double coefficients, then convert clips") {
    Image im;
    im.mode = PixelMode::I;
    im.width = 4;
    im.height = 1;
    im.values = {0, 700, 1400, 2100};
    Image out = resize_image(im, 2, 1, ResampleFilter::Bilinear);
    // Same taps as the 8-bit case above: 700*3/7 + 1400/7 = 500, (700 + 3*1400 + 3*2100)/7 = 1600.
    CHECK(out.values == std::vector<int32_t>{500, 1600});
    CHECK(to_rgb(out).pixels == std::vector<uint8_t>{255, 255, 255, 255, 255, 255});
  }
  SECTION("bicubic overshoot is clipped to [0, 255]") {
    Image im = gray_image(6, 1, {0, 0, 0, 255, 255, 255});
    Image up = resize_image(im, 24, 1, ResampleFilter::Bicubic);
    bool has0 = false, has255 = false;
    for (uint8_t v : up.pixels) {
      has0 |= v == 0;
      has255 |= v == 255;
    }
    CHECK(has0);
    CHECK(has255);
  }
  SECTION("RGBA is resized premultiplied: a transparent pixel's colour does not bleed") {
    Image im;
    im.mode = PixelMode::RGBA;
    im.width = 2;
    im.height = 1;
    // Opaque red beside fully transparent green.
    im.pixels = {255, 0, 0, 255, 0, 255, 0, 0};
    Image out = resize_image(im, 1, 1, ResampleFilter::Bilinear);
    // Premultiplied green is 0, so the average is red at half alpha: 127.5*255/alpha.
    CHECK(int(out.pixels[1]) == 0);
    CHECK(int(out.pixels[0]) == 255);
    CHECK(int(out.pixels[3]) == 128);  // 255 * 0.5 rounds up in fixed point
  }
  SECTION("palette images use nearest neighbour and keep their palette") {
    Image im;
    im.mode = PixelMode::P;
    im.width = 4;
    im.height = 1;
    im.pixels = {0, 1, 2, 3};
    im.palette.assign(768, 0);
    for (int i = 0; i < 4; ++i) im.palette[3 * i] = static_cast<uint8_t>(10 * (i + 1));
    Image out = resize_image(im, 2, 1, ResampleFilter::Bicubic);
    // centres 1.0 and 3.0 -> source pixels 1 and 3.
    REQUIRE(out.pixels == std::vector<uint8_t>{1, 3});
    Image rgb = to_rgb(out);
    CHECK(rgb.pixels == std::vector<uint8_t>{20, 0, 0, 40, 0, 0});
  }
  SECTION("the crop window equals cropping the full resize") {
    Image im;
    im.mode = PixelMode::RGB;
    im.width = 37;
    im.height = 23;
    im.pixels.resize(37 * 23 * 3);
    for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>((i * 2654435761u) >> 24);
    Image full = resize_image(im, 19, 11, ResampleFilter::Bicubic);
    Image win = resize_crop_image(im, 19, 11, 3, 2, 10, 7, ResampleFilter::Bicubic);
    for (int64_t y = 0; y < 7; ++y)
      for (int64_t x = 0; x < 10; ++x)
        for (int c = 0; c < 3; ++c)
          REQUIRE(win.pixels[(y * 10 + x) * 3 + c] == full.pixels[((y + 2) * 19 + x + 3) * 3 + c]);
  }
}

TEST_CASE("normalization is ToTensor then CLIP's mean and std", "[image]") {
  Image im;
  im.mode = PixelMode::RGB;
  im.width = 1;
  im.height = 1;
  im.pixels = {255, 0, 128};
  ClipPreprocessConfig cfg;
  cfg.resolution = 1;
  at::Tensor x = clip_preprocess(im, cfg);
  CHECK(x[0][0][0].item<float>() == Approx((1.0 - 0.48145466) / 0.26862954).epsilon(1e-6));
  CHECK(x[1][0][0].item<float>() == Approx((0.0 - 0.4578275) / 0.26130258).epsilon(1e-6));
  CHECK(x[2][0][0].item<float>() == Approx((128.0 / 255.0 - 0.40821073) / 0.27577711).epsilon(1e-6));
  CHECK(preprocessing_name(cfg) == "resize1-bicubic-centercrop-clipnorm");
}
