// A feature set of random unit rows for storage tests and the feature-file
// fuzz seeds: n rows of dimension d, labels i mod c, UTF-8 ids, class names
// and, with `extras`, unit text embeddings and image sizes; attributes name
// ViT-B/32, the split "val", `dataset` and `preprocessing`. Values come from
// LibTorch's global generator (seed it first for fixed values).
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "data/feature_set.h"

namespace semcodec::test {

inline FeatureSet random_feature_set(int64_t n, int64_t d, int64_t c, bool extras, const std::string& dataset,
                                     const std::string& preprocessing) {
  FeatureSet s;
  at::Tensor x = at::randn({n, d});
  s.features = x / x.norm(2, 1, true);
  s.labels = at::arange(n, at::kLong).remainder(c);
  for (int64_t i = 0; i < n; ++i) s.ids.push_back("img/" + std::to_string(i) + "_\xc3\xa9.jpg");  // UTF-8
  for (int64_t k = 0; k < c; ++k) s.class_names.push_back("class " + std::to_string(k));
  if (extras) {
    at::Tensor t = at::randn({c, d});
    s.class_embeddings = t / t.norm(2, 1, true);
    s.image_sizes = at::randint(1, 1000, {n, 2}, at::kInt);
  }
  s.attrs.encoder_model = "ViT-B/32";
  s.attrs.dataset = dataset;
  s.attrs.split = "val";
  s.attrs.preprocessing = preprocessing;
  return s;
}

}  // namespace semcodec::test
