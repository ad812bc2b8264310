// The synthetic CLIP-like generator: shapes, determinism, and the statistics that
// make it stand in for real CLIP ViT-L/14 features (docs/synthetic.md). Every
// statistic is computed here from the returned tensors, independently of the
// generator's own code.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "data/synthetic.h"
#include "util/error.h"

using semcodec::FeatureSet;
using semcodec::SyntheticOptions;
using semcodec::make_synthetic;

namespace {

SyntheticOptions small_options(int64_t classes, int64_t per_class, int64_t dim, uint64_t seed = 0) {
  SyntheticOptions o;
  o.num_classes = classes;
  o.per_class = per_class;
  o.dim = dim;
  o.seed = seed;
  return o;
}

// Mean cosine of each image with its own class's text embedding.
double own_text_cosine(const FeatureSet& s) {
  const auto x = s.features.accessor<float, 2>();
  const auto t = s.class_embeddings.accessor<float, 2>();
  const auto y = s.labels.accessor<int64_t, 1>();
  double total = 0.0;
  for (int64_t i = 0; i < s.size(); ++i) {
    double dot = 0.0;
    for (int64_t d = 0; d < s.dim(); ++d) dot += static_cast<double>(x[i][d]) * t[y[i]][d];
    total += dot;
  }
  return total / static_cast<double>(s.size());
}

// Mean off-diagonal cosine between rows of a unit-norm matrix.
double mean_pairwise_cosine(const at::Tensor& rows) {
  const int64_t n = rows.size(0);
  const at::Tensor g = rows.to(at::kDouble).mm(rows.to(at::kDouble).t());
  return (g.sum().item<double>() - g.diagonal().sum().item<double>()) / static_cast<double>(n * (n - 1));
}

// Fraction of the total variance of the centred features carried by the top `frac`
// of the eigenvalues of their covariance.
double top_eigen_fraction(const at::Tensor& features, double frac) {
  const at::Tensor x = features.to(at::kDouble);
  const at::Tensor xc = x - x.mean(0, /*keepdim=*/true);
  const at::Tensor cov = xc.t().mm(xc) / static_cast<double>(x.size(0));
  std::vector<double> ev(static_cast<size_t>(cov.size(0)));
  const at::Tensor e = at::linalg_eigvalsh(cov).contiguous();
  for (int64_t i = 0; i < e.size(0); ++i) ev[i] = e[i].item<double>();
  std::sort(ev.begin(), ev.end(), std::greater<double>());
  const auto top = static_cast<size_t>(frac * static_cast<double>(ev.size()));
  const double total = std::accumulate(ev.begin(), ev.end(), 0.0);
  return std::accumulate(ev.begin(), ev.begin() + top, 0.0) / total;
}

struct Accuracy {
  double top1 = 0, top5 = 0;
};

// Zero-shot classification of the images of `classes`, compared only with the text
// embeddings of `classes` (|classes|-way, like the paper's held-out evaluation).
Accuracy zero_shot(const FeatureSet& s, const std::vector<int64_t>& classes) {
  std::vector<int64_t> local(static_cast<size_t>(s.num_classes()), -1);
  for (size_t k = 0; k < classes.size(); ++k) local[classes[k]] = static_cast<int64_t>(k);
  const auto y = s.labels.accessor<int64_t, 1>();
  std::vector<int64_t> rows, truth;
  for (int64_t i = 0; i < s.size(); ++i)
    if (local[y[i]] >= 0) {
      rows.push_back(i);
      truth.push_back(local[y[i]]);
    }
  const at::Tensor x = s.features.index_select(0, at::tensor(rows, at::kLong));
  const at::Tensor t = s.class_embeddings.index_select(0, at::tensor(classes, at::kLong));
  const at::Tensor scores = x.mm(t.t()).contiguous();
  const auto sc = scores.accessor<float, 2>();
  int64_t hit1 = 0, hit5 = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const float own = sc[i][truth[i]];
    int64_t better = 0;  // rank of the true class
    for (int64_t k = 0; k < scores.size(1); ++k)
      if (sc[i][k] > own) ++better;
    hit1 += better == 0;
    hit5 += better < 5;
  }
  const double n = static_cast<double>(rows.size());
  return {static_cast<double>(hit1) / n, static_cast<double>(hit5) / n};
}

std::vector<int64_t> last_classes(int64_t num_classes, int64_t count) {
  std::vector<int64_t> v;
  for (int64_t c = num_classes - count; c < num_classes; ++c) v.push_back(c);
  return v;
}

// `count` distinct classes chosen by a seeded Fisher-Yates shuffle (a plain LCG).
std::vector<int64_t> seeded_classes(int64_t num_classes, int64_t count, uint64_t seed) {
  std::vector<int64_t> perm(static_cast<size_t>(num_classes));
  std::iota(perm.begin(), perm.end(), 0);
  uint64_t state = seed * 2862933555777941757ULL + 3037000493ULL;
  for (int64_t i = num_classes - 1; i > 0; --i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    std::swap(perm[i], perm[(state >> 33) % static_cast<uint64_t>(i + 1)]);
  }
  perm.resize(static_cast<size_t>(count));
  return perm;
}

double max_norm_error(const at::Tensor& rows) {
  return (rows.to(at::kDouble).norm(2, {1}) - 1.0).abs().max().item<double>();
}

}  // namespace

TEST_CASE("synthetic: shapes, labels, ids and attributes", "[data][synthetic]") {
  const auto s = make_synthetic(small_options(12, 5, 64));
  REQUIRE(s.size() == 60);
  REQUIRE(s.dim() == 64);
  REQUIRE(s.num_classes() == 12);
  CHECK(s.features.scalar_type() == at::kFloat);
  CHECK(s.features.is_contiguous());
  CHECK(s.labels.scalar_type() == at::kLong);
  REQUIRE(s.labels.size(0) == 60);
  REQUIRE(s.has_text());
  CHECK(s.class_embeddings.scalar_type() == at::kFloat);
  CHECK(s.class_embeddings.size(0) == 12);
  CHECK(s.class_embeddings.size(1) == 64);
  CHECK_FALSE(s.image_sizes.defined());
  const auto y = s.labels.accessor<int64_t, 1>();
  for (int64_t i = 0; i < 60; ++i) CHECK(y[i] == i / 5);  // class-major
  REQUIRE(s.ids.size() == 60);
  CHECK(s.ids[0] == "synthetic/0");
  CHECK(s.ids[59] == "synthetic/59");
  REQUIRE(s.class_names.size() == 12);
  CHECK(s.class_names[0] == "synthetic class 0");
  CHECK(s.class_names[11] == "synthetic class 11");
  CHECK(s.attrs.encoder_model == "synthetic-clip-v1");
  CHECK(s.attrs.dataset == "synthetic");
  CHECK(s.attrs.split == "all");
  CHECK(s.attrs.preprocessing == "none");
}

TEST_CASE("synthetic: deterministic for equal options, different for another seed", "[data][synthetic]") {
  const auto a = make_synthetic(small_options(30, 4, 128, 7));
  const auto b = make_synthetic(small_options(30, 4, 128, 7));
  CHECK(at::equal(a.features, b.features));
  CHECK(at::equal(a.class_embeddings, b.class_embeddings));
  CHECK(at::equal(a.labels, b.labels));
  const auto c = make_synthetic(small_options(30, 4, 128, 8));
  CHECK_FALSE(at::equal(a.features, c.features));
  CHECK_FALSE(at::equal(a.class_embeddings, c.class_embeddings));
}

TEST_CASE("synthetic: a few fixed values pin the generator", "[data][synthetic]") {
  // Guards against accidental changes of the model or the PRNG: regenerate the numbers
  // (and say so in docs/synthetic.md) only when the change is intended.
  const auto s = make_synthetic(small_options(3, 2, 16, 0));
  const auto x = s.features.accessor<float, 2>();
  const auto t = s.class_embeddings.accessor<float, 2>();
  double sx = 0.0, st = 0.0;
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t d = 0; d < 16; ++d) sx += x[i][d] * static_cast<double>(d + 1) * static_cast<double>(i + 1);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t d = 0; d < 16; ++d) st += t[c][d] * static_cast<double>(d + 1) * static_cast<double>(c + 1);
  INFO("checksums " << sx << " " << st);
  CHECK(sx == Approx(-193.657380).margin(1e-3));
  CHECK(st == Approx(-55.019007).margin(1e-3));
}

TEST_CASE("synthetic: features and text embeddings are unit norm", "[data][synthetic]") {
  for (int64_t dim : {16, 33, 256, 768}) {
    const auto s = make_synthetic(small_options(20, 3, dim));
    INFO("dim " << dim);
    CHECK(max_norm_error(s.features) < 1e-5);
    CHECK(max_norm_error(s.class_embeddings) < 1e-5);
  }
}

TEST_CASE("synthetic: invalid options are rejected", "[data][synthetic]") {
  auto o = small_options(10, 2, 64);
  o.num_classes = 0;
  CHECK_THROWS_AS(make_synthetic(o), semcodec::Error);
  o = small_options(10, 2, 64);
  o.per_class = 0;
  CHECK_THROWS_AS(make_synthetic(o), semcodec::Error);
  o = small_options(10, 2, 8);
  CHECK_THROWS_AS(make_synthetic(o), semcodec::Error);
  o = small_options(10, 2, 64);
  o.image_offset = 0.9;  // the image energy budget exceeds 1
  CHECK_THROWS_AS(make_synthetic(o), semcodec::Error);
  o = small_options(10, 2, 64);
  o.text_class = -0.1;
  CHECK_THROWS_AS(make_synthetic(o), semcodec::Error);
}

TEST_CASE("synthetic: CLIP-like statistics on a 300-class set", "[data][synthetic]") {
  const auto s = make_synthetic(small_options(300, 10, 768, 3));

  // Modality gap: an image is only weakly aligned with its own class text.
  const double gap = own_text_cosine(s);
  INFO("own-class image-text cosine " << gap);
  CHECK(gap >= 0.20);
  CHECK(gap <= 0.35);

  // Images share a common direction, texts another.
  const double ii = mean_pairwise_cosine(s.features.slice(0, 0, s.size(), 3));
  const double tt = mean_pairwise_cosine(s.class_embeddings);
  INFO("image-image " << ii << ", text-text " << tt);
  CHECK(ii >= 0.40);
  CHECK(ii <= 0.70);
  CHECK(tt >= 0.35);
  CHECK(tt <= 0.80);

  // Anisotropic spectrum: the top 10% of eigenvalues carry most of the variance.
  const double top10 = top_eigen_fraction(s.features, 0.10);
  INFO("top-10% eigenvalue share " << top10);
  CHECK(top10 > 0.5);
  CHECK(top10 < 0.95);  // but not degenerate: the rest carries real variance

  // Zero-shot 200-way on held-out classes.
  for (const auto& classes : {last_classes(300, 200), seeded_classes(300, 200, 11)}) {
    const auto acc = zero_shot(s, classes);
    INFO("200-way top-1 " << acc.top1 << ", top-5 " << acc.top5);
    CHECK(acc.top1 >= 0.70);
    CHECK(acc.top1 <= 0.95);
    CHECK(acc.top5 > acc.top1);
  }
}

TEST_CASE("synthetic: the default set (50,000 x 768)", "[data][synthetic][default]") {
  const SyntheticOptions o;
  REQUIRE(o.num_classes == 1000);
  REQUIRE(o.per_class == 50);
  REQUIRE(o.dim == 768);
  const auto s = make_synthetic(o);
  REQUIRE(s.size() == 50000);
  REQUIRE(s.dim() == 768);
  CHECK(max_norm_error(s.features) < 1e-5);
  CHECK(max_norm_error(s.class_embeddings) < 1e-5);

  const double gap = own_text_cosine(s);
  INFO("own-class image-text cosine " << gap);
  CHECK(gap >= 0.20);
  CHECK(gap <= 0.35);

  const double top10 = top_eigen_fraction(s.features, 0.10);
  INFO("top-10% eigenvalue share " << top10);
  CHECK(top10 > 0.5);

  const auto held_last = zero_shot(s, last_classes(1000, 200));
  const auto held_seeded = zero_shot(s, seeded_classes(1000, 200, 0));
  std::vector<int64_t> all(1000);
  std::iota(all.begin(), all.end(), 0);
  const auto full = zero_shot(s, all);
  INFO("200-way (last) top-1 " << held_last.top1 << " top-5 " << held_last.top5);
  INFO("200-way (seeded) top-1 " << held_seeded.top1 << " top-5 " << held_seeded.top5);
  INFO("1000-way top-1 " << full.top1 << " top-5 " << full.top5);
  for (const auto& acc : {held_last, held_seeded}) {
    CHECK(acc.top1 >= 0.70);
    CHECK(acc.top1 <= 0.95);
    CHECK(acc.top5 > acc.top1);
  }
  CHECK(full.top1 < std::min(held_last.top1, held_seeded.top1));
  CHECK(full.top1 > 0.55);
  CHECK(full.top5 > full.top1);
}
