// The extraction tests' images and encoder: an ImageFolder of 27 readable
// images in three classes (JPEG RGB and gray, PNG RGBA, varied sizes) plus
// four unreadable files spread over classes and batches, and a deterministic
// fake encoder (4x4 mean pooling and a fixed projection).
#pragma once
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "data/extraction.h"
#include "data/feature_store.h"
#include "test_image_writers.h"
#include "test_support.h"

namespace semcodec::test {

constexpr int64_t kRes = 16, kDim = 8;

// Mean-pools 4x4 blocks of [B, 3, 16, 16] and projects the 48 values by a fixed matrix.
inline at::Tensor fake_encoder(const at::Tensor& batch) {
  REQUIRE(batch.dim() == 4);
  at::Tensor pooled = batch.view({batch.size(0), 3, 4, 4, 4, 4}).mean({3, 5}).reshape({batch.size(0), 48});
  at::Tensor w = at::empty({48, kDim}, at::kFloat);
  for (int64_t i = 0; i < 48; ++i)
    for (int64_t j = 0; j < kDim; ++j) w[i][j] = static_cast<float>(std::sin(0.7 * i + 1.3 * j + 0.1));
  return at::matmul(pooled, w) + 0.5;
}

struct ExtractionFixture {
  test::TempDir dir{"extract"};
  ImageDataset dataset;
  int bad = 0;

  ExtractionFixture() {
    namespace fs = std::filesystem;
    const std::vector<std::string> classes{"cat", "dog", "emu"};
    int n = 0;
    for (size_t c = 0; c < classes.size(); ++c) {
      fs::create_directories(dir.file("data/" + classes[c]));
      for (int i = 0; i < 9; ++i, ++n) {
        const int w = 12 + 7 * ((n * 5) % 6), h = 10 + 5 * ((n * 3) % 7);
        const std::string stem = dir.file("data/" + classes[c] + "/img" + std::to_string(i));
        auto px = test::rgb_pattern(w, h, n);
        if (n % 3 == 0) {
          test::write_bytes(stem + ".jpg", test::encode_jpeg(w, h, 3, JCS_RGB, px, 90));
        } else if (n % 3 == 1) {
          std::vector<uint8_t> rgba;
          for (size_t p = 0; p < px.size() / 3; ++p) {
            rgba.insert(rgba.end(), {px[3 * p], px[3 * p + 1], px[3 * p + 2], static_cast<uint8_t>(p * 13)});
          }
          test::write_bytes(stem + ".png", test::encode_png(w, h, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba));
        } else {
          std::vector<uint8_t> gray(static_cast<size_t>(w * h));
          for (size_t p = 0; p < gray.size(); ++p) gray[p] = px[3 * p + 2];
          test::write_bytes(stem + ".jpeg", test::encode_jpeg(w, h, 1, JCS_GRAYSCALE, gray, 85));
        }
      }
    }
    // Unreadable files, spread over classes and batches.
    auto good = test::encode_jpeg(20, 20, 3, JCS_RGB, test::rgb_pattern(20, 20), 90);
    test::write_bytes(dir.file("data/cat/img3b_zero.jpg"), "");
    test::write_bytes(dir.file("data/dog/img8_trunc.jpg"), good.substr(0, good.size() / 2));
    test::write_bytes(dir.file("data/dog/img9_corrupt.png"), std::string("\x89PNG\r\n\x1a\n", 8) + std::string(64, 'x'));
    std::string huge = good;
    for (size_t i = 2; i + 9 < huge.size(); ++i)
      if (static_cast<unsigned char>(huge[i]) == 0xFF && static_cast<unsigned char>(huge[i + 1]) == 0xC0) {
        huge[i + 5] = huge[i + 6] = huge[i + 7] = huge[i + 8] = '\xF0';
        break;
      }
    test::write_bytes(dir.file("data/emu/img0_huge.jpg"), huge);
    test::write_bytes(dir.file("data/emu/readme.txt"), "not an image");
    bad = 4;
    dataset = scan_image_folder(dir.file("data"));
    dataset.name = "toy";
  }

  ExtractionOptions options(int64_t batch = 4) const {
    ExtractionOptions o;
    o.preprocess.resolution = kRes;
    o.embed_dim = kDim;
    o.batch_size = batch;
    o.decode_threads = 2;
    o.progress = false;
    o.attrs.encoder_model = "fake-meanpool";
    return o;
  }
};

inline void require_same_file(const std::string& a, const std::string& b) {
  FeatureSet x = read_feature_file(a), y = read_feature_file(b);
  REQUIRE(x.size() == y.size());
  CHECK(x.ids == y.ids);
  CHECK(at::equal(x.labels, y.labels));
  CHECK(at::equal(x.features, y.features));
  CHECK(at::equal(x.image_sizes, y.image_sizes));
  CHECK(x.class_names == y.class_names);
  CHECK(x.attrs.preprocessing == y.attrs.preprocessing);
}

}  // namespace semcodec::test
