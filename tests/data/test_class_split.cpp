#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "data/class_split.h"
#include "data/npy.h"
#include "test_support.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {
using semcodec::test::error_of;
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("split_by_seed is deterministic and valid", "[class_split]") {
  ClassSplit a = split_by_seed(1000, 200, 42);
  ClassSplit b = split_by_seed(1000, 200, 42);
  ClassSplit c = split_by_seed(1000, 200, 43);
  CHECK(a.train == b.train);
  CHECK(a.heldout == b.heldout);
  CHECK(a.heldout != c.heldout);
  CHECK(a.train.size() == 800);
  CHECK(a.heldout.size() == 200);
  CHECK_NOTHROW(validate_split(a, 1000, "seed 42"));
  // Pinned values: the split must not change across platforms or releases.
  ClassSplit small = split_by_seed(10, 3, 0);
  CAPTURE(small.heldout);
  CHECK(small.heldout.size() == 3);
  CHECK(small.heldout == std::vector<int64_t>{2, 3, 6});
  CHECK(small.train == std::vector<int64_t>{0, 1, 4, 5, 7, 8, 9});
  CHECK_THROWS_AS(split_by_seed(10, 0, 1), Error);
  CHECK_THROWS_AS(split_by_seed(10, 10, 1), Error);
}

TEST_CASE("validate_split reports each problem", "[class_split]") {
  CHECK(contains(error_of([] { validate_split({{0, 1}, {}}, 4, "src"); }), "src: the held-out class list is empty"));
  CHECK(contains(error_of([] { validate_split({{}, {1}}, 4, "src"); }), "training class list is empty"));
  CHECK(contains(error_of([] { validate_split({{0, 1}, {1, 2}}, 4, "src"); }), "class 1 is in both"));
  CHECK(contains(error_of([] { validate_split({{0, 0}, {2}}, 4, "src"); }), "listed twice"));
  CHECK(contains(error_of([] { validate_split({{0, 1}, {2, 4}}, 4, "src"); }), "class 4 is outside [0, 4)"));
  CHECK(contains(error_of([] { validate_split({{-1}, {2}}, 4, "src"); }), "outside"));
}

TEST_CASE("class lists from .txt, .yaml and .npy", "[class_split]") {
  TempDir dir("split");
  std::ofstream(dir.file("train.txt")) << "# training classes\n0\n 2 # two\n\n4\n";
  std::ofstream(dir.file("held.yaml")) << "[1, 3]\n";
  std::ofstream(dir.file("held_map.yml")) << "classes:\n  - 1\n  - 3\n";
  write_npy(dir.file("held.npy"), at::tensor(std::vector<int32_t>{3, 1}));
  CHECK(read_class_list(dir.file("train.txt")) == std::vector<int64_t>{0, 2, 4});
  CHECK(read_class_list(dir.file("held.yaml")) == std::vector<int64_t>{1, 3});
  CHECK(read_class_list(dir.file("held_map.yml")) == std::vector<int64_t>{1, 3});
  CHECK(read_class_list(dir.file("held.npy")) == std::vector<int64_t>{3, 1});
  ClassSplit s = split_from_files(dir.file("train.txt"), dir.file("held.npy"), 5);
  CHECK(s.heldout == std::vector<int64_t>{1, 3});
  CHECK(contains(error_of([&] { split_from_files(dir.file("train.txt"), dir.file("held.yaml"), 4); }), "train.txt"));

  std::ofstream(dir.file("bad.txt")) << "1\nfoo\n";
  CHECK(contains(error_of([&] { read_class_list(dir.file("bad.txt")); }), "bad.txt:2"));
  std::ofstream(dir.file("bad.csv")) << "1\n";
  CHECK(contains(error_of([&] { read_class_list(dir.file("bad.csv")); }), "unknown class-list format"));
  write_npy(dir.file("f.npy"), at::zeros({3}));
  CHECK(contains(error_of([&] { read_class_list(dir.file("f.npy")); }), "integers"));
  CHECK(contains(error_of([&] { read_class_list(dir.file("missing.txt")); }), "missing.txt"));
}

TEST_CASE("the paper's 800/200 ImageNet split", "[class_split]") {
  // In the repository (configs/splits/imagenet-800-200/README.md).
  const std::string dir = std::string(SEMCODEC_SOURCE_DIR) + "/configs/splits/imagenet-800-200/";
  const std::string train = dir + "train_classes.npy", held = dir + "heldout_classes.npy";
  ClassSplit s = split_from_files(train, held, 1000);
  CHECK(s.train.size() == 800);
  CHECK(s.heldout.size() == 200);
  std::set<int64_t> all(s.train.begin(), s.train.end());
  all.insert(s.heldout.begin(), s.heldout.end());
  CHECK(all.size() == 1000);
  CHECK(*all.begin() == 0);
  CHECK(*all.rbegin() == 999);
}
