// Row and class selection on in-memory feature sets.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include "data/feature_set.h"
#include "util/error.h"

using namespace semcodec;

namespace {
// 10 rows, row i has feature value i in every column, label i / 2, id "r<i>".
FeatureSet ten_rows() {
  FeatureSet s;
  s.features = at::arange(10, at::kFloat).unsqueeze(1).repeat({1, 3});
  s.labels = at::arange(10, at::kLong).div(2, "floor");
  for (int i = 0; i < 10; ++i) s.ids.push_back("r" + std::to_string(i));
  for (int c = 0; c < 5; ++c) s.class_names.push_back("c" + std::to_string(c));
  s.image_sizes = at::arange(20, at::kInt).reshape({10, 2});
  return s;
}
}  // namespace

TEST_CASE("select_rows keeps features, labels, ids and image sizes together", "[data]") {
  FeatureSet s = select_rows(ten_rows(), {7, 2, 2});
  REQUIRE(s.size() == 3);
  CHECK(s.features[0][1].item<float>() == 7);
  CHECK(s.features[2][0].item<float>() == 2);
  CHECK(s.labels[0].item<int64_t>() == 3);
  CHECK(s.ids == std::vector<std::string>{"r7", "r2", "r2"});
  CHECK(s.image_sizes[0][1].item<int>() == 15);
  CHECK(s.num_classes() == 5);
  CHECK_THROWS_WITH(select_rows(ten_rows(), {10}), Catch::Contains("row 10"));
}

TEST_CASE("stride_rows takes an even stride and all rows when the cap is 0 or large", "[data]") {
  // 10 rows capped at 4: rows floor(i * 10 / 4) = 0, 2, 5, 7.
  FeatureSet s = stride_rows(ten_rows(), 4);
  CHECK(s.ids == std::vector<std::string>{"r0", "r2", "r5", "r7"});
  CHECK(stride_rows(ten_rows(), 0).size() == 10);
  CHECK(stride_rows(ten_rows(), 10).size() == 10);
  CHECK(stride_rows(ten_rows(), 99).size() == 10);
  CHECK_THROWS_AS(stride_rows(ten_rows(), -1), Error);
}

TEST_CASE("select_classes keeps the rows of the listed classes in file order", "[data]") {
  FeatureSet s = select_classes(ten_rows(), {4, 1});
  CHECK(s.ids == std::vector<std::string>{"r2", "r3", "r8", "r9"});
  CHECK_THROWS_WITH(select_classes(ten_rows(), {5}), Catch::Contains("class 5"));
}
