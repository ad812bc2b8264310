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
#include "extraction_fixture.h"
#include "test_image_writers.h"
#include "test_support.h"
#include "util/atomic_file.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::TempDir;

using test::fake_encoder;
using test::require_same_file;
using Fixture = test::ExtractionFixture;
using test::kDim;
using test::kRes;

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
  SECTION("one batch per run needs exactly one run per batch, also where a batch ends in unreadable images") {
    // 31 records in batches of 4: batch 4 (records 16..19) ends with the
    // truncated dog/img8_trunc.jpg, so its last row is record 18.
    const std::string out = fx.dir.file("one-by-one.h5");
    ExtractionOptions o = fx.options();
    o.max_batches = 1;
    int runs = 0;
    for (; runs < 20; ++runs)
      if (extract_features(fx.dataset, out, fake_encoder, o).complete) break;
    CHECK(runs + 1 == 8);
    require_same_file(ref, out);
    CHECK(read_file(skipped_list_path(out)) == read_file(skipped_list_path(ref)));
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
