// The extraction pipeline with generated images and a deterministic fake
// encoder: rows equal per-image references, an interrupted run resumed from
// its partial file equals an uninterrupted one row for row, and unreadable
// files are skipped and listed.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/extraction.h"
#include "data/feature_store.h"
#include "test_image_writers.h"
#include "test_support.h"
#include "util/atomic_file.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {

constexpr int64_t kRes = 16, kDim = 8;

// Mean-pools 4x4 blocks of [B, 3, 16, 16] and projects the 48 values by a fixed matrix.
at::Tensor fake_encoder(const at::Tensor& batch) {
  REQUIRE(batch.dim() == 4);
  at::Tensor pooled = batch.view({batch.size(0), 3, 4, 4, 4, 4}).mean({3, 5}).reshape({batch.size(0), 48});
  at::Tensor w = at::empty({48, kDim}, at::kFloat);
  for (int64_t i = 0; i < 48; ++i)
    for (int64_t j = 0; j < kDim; ++j) w[i][j] = static_cast<float>(std::sin(0.7 * i + 1.3 * j + 0.1));
  return at::matmul(pooled, w) + 0.5;
}

struct Fixture {
  TempDir dir{"extract"};
  ImageDataset dataset;
  int bad = 0;

  Fixture() {
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

void require_same_file(const std::string& a, const std::string& b) {
  FeatureSet x = read_feature_file(a), y = read_feature_file(b);
  REQUIRE(x.size() == y.size());
  CHECK(x.ids == y.ids);
  CHECK(at::equal(x.labels, y.labels));
  CHECK(at::equal(x.features, y.features));
  CHECK(at::equal(x.image_sizes, y.image_sizes));
  CHECK(x.class_names == y.class_names);
  CHECK(x.attrs.preprocessing == y.attrs.preprocessing);
}

}  // namespace

TEST_CASE("extraction writes one normalized row per readable image, in dataset order", "[extract]") {
  Fixture fx;
  REQUIRE(fx.dataset.records.size() == 27 + 4);
  const std::string out = fx.dir.file("feat.h5");
  ExtractionSummary s = extract_features(fx.dataset, out, fake_encoder, fx.options());
  CHECK(s.complete);
  CHECK(s.rows == 27);
  CHECK(s.skipped.size() == 4);
  CHECK(s.processed == 31);
  CHECK_FALSE(file_exists(FeatureWriter::partial_path(out)));

  FeatureSet set = read_feature_file(out);
  REQUIRE(set.size() == 27);
  CHECK(set.class_names == std::vector<std::string>{"cat", "dog", "emu"});
  CHECK(set.attrs.preprocessing == "resize16-bicubic-centercrop-clipnorm");
  CHECK(set.attrs.dataset == "toy");
  // Each row against the image decoded and encoded on its own.
  int64_t row = 0;
  for (const auto& rec : fx.dataset.records) {
    bool readable = true;
    Image im;
    try {
      im = read_image(rec.path);
    } catch (const Error&) {
      readable = false;
    }
    if (!readable) continue;
    REQUIRE(row < set.size());
    CHECK(set.ids[row] == rec.id);
    CHECK(set.labels[row].item<int64_t>() == rec.label);
    CHECK(set.image_sizes[row][0].item<int>() == im.height);
    CHECK(set.image_sizes[row][1].item<int>() == im.width);
    ClipPreprocessConfig pre;
    pre.resolution = kRes;
    at::Tensor e = fake_encoder(clip_preprocess(im, pre).unsqueeze(0))[0];
    e = e / e.norm();
    CHECK((set.features[row] - e).abs().max().item<double>() < 1e-6);
    ++row;
  }
  CHECK(row == 27);

  // The sidecar lists each skipped file with its reason.
  REQUIRE(s.skipped_list == skipped_list_path(out));
  std::ifstream in(s.skipped_list);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* expect : {"img3b_zero.jpg\t", "empty file", "img8_trunc.jpg\t", "truncated", "img9_corrupt.png\t",
                             "corrupt PNG", "img0_huge.jpg\t", "above the limit"})
    CHECK(text.find(expect) != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 5);
}

TEST_CASE("an interrupted extraction resumes to the same file as an uninterrupted one", "[extract]") {
  Fixture fx;
  const std::string ref = fx.dir.file("ref.h5");
  extract_features(fx.dataset, ref, fake_encoder, fx.options());

  SECTION("stopped after k batches (max_batches), resumed in several runs") {
    const std::string out = fx.dir.file("resumed.h5");
    for (int64_t k : {1, 2, 3}) {
      ExtractionOptions o = fx.options();
      o.max_batches = k;
      ExtractionSummary s = extract_features(fx.dataset, out, fake_encoder, o);
      CHECK_FALSE(s.complete);
      CHECK(file_exists(FeatureWriter::partial_path(out)));
      CHECK_FALSE(file_exists(out));
    }
    ExtractionSummary s = extract_features(fx.dataset, out, fake_encoder, fx.options());
    CHECK(s.complete);
    CHECK(s.resumed_rows > 0);
    CHECK(s.skipped.size() == 4);
    require_same_file(ref, out);
  }
  SECTION("the encoder throws mid-run (a crash), then a rerun continues") {
    for (int64_t fail_at : {1, 3, 5}) {
      const std::string out = fx.dir.file("crash" + std::to_string(fail_at) + ".h5");
      int calls = 0;
      ImageEncoder crashing = [&](const at::Tensor& b) {
        if (++calls > fail_at) throw std::runtime_error("simulated crash");
        return fake_encoder(b);
      };
      ExtractionOptions o = fx.options();
      o.decode_threads = 3;
      CHECK_THROWS_WITH(extract_features(fx.dataset, out, crashing, o), "simulated crash");
      REQUIRE(file_exists(FeatureWriter::partial_path(out)));
      ExtractionSummary s = extract_features(fx.dataset, out, fake_encoder, fx.options());
      CHECK(s.complete);
      CHECK(s.rows == 27);
      CHECK(s.skipped.size() == 4);
      require_same_file(ref, out);
    }
  }
  SECTION("batch size and thread count do not change the rows") {
    const std::string out = fx.dir.file("b7.h5");
    ExtractionOptions o = fx.options(7);
    o.decode_threads = 1;
    o.prefetch_batches = 0;
    extract_features(fx.dataset, out, fake_encoder, o);
    FeatureSet a = read_feature_file(ref), b = read_feature_file(out);
    CHECK(a.ids == b.ids);
    CHECK((a.features - b.features).abs().max().item<double>() < 1e-6);
  }
  SECTION("resuming with different settings is refused") {
    const std::string out = fx.dir.file("mismatch.h5");
    ExtractionOptions o = fx.options();
    o.max_batches = 1;
    extract_features(fx.dataset, out, fake_encoder, o);
    ExtractionOptions other = fx.options();
    other.preprocess.filter = ResampleFilter::Bilinear;
    CHECK_THROWS_WITH(extract_features(fx.dataset, out, fake_encoder, other), Catch::Contains("cannot resume"));
    other.resume = false;  // starts over instead
    CHECK(extract_features(fx.dataset, out, fake_encoder, other).complete);
  }
}

TEST_CASE("extraction rejects bad encoders and settings", "[extract]") {
  Fixture fx;
  ExtractionOptions o = fx.options();
  auto wrong_dim = [](const at::Tensor& b) { return at::ones({b.size(0), kDim + 1}); };
  CHECK_THROWS_WITH(extract_features(fx.dataset, fx.dir.file("a.h5"), wrong_dim, o), Catch::Contains("expected ["));
  auto nan = [](const at::Tensor& b) { return at::full({b.size(0), kDim}, NAN); };
  CHECK_THROWS_WITH(extract_features(fx.dataset, fx.dir.file("b.h5"), nan, o), Catch::Contains("NaN"));
  o.embed_dim = 0;
  CHECK_THROWS_WITH(extract_features(fx.dataset, fx.dir.file("c.h5"), fake_encoder, o), Catch::Contains("embed_dim"));
}
