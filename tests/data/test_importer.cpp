#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/importer.h"
#include "data/npy.h"
#include "test_support.h"
#include "util/error.h"
#include "zip_writer.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {
using semcodec::test::error_of;
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("import .npy features, labels, names and text embeddings", "[importer]") {
  TempDir dir("import");
  at::manual_seed(2);
  at::Tensor x = at::randn({30, 12}, at::kDouble) * 3;
  write_npy(dir.file("x.npy"), x);
  write_npy(dir.file("y.npy"), at::arange(30, at::kInt).remainder(3));
  write_npy(dir.file("t.npy"), at::randn({3, 12}));
  write_npy(dir.file("sizes.npy"), at::full({30, 2}, 224, at::kLong));
  std::ofstream(dir.file("names.txt")) << "cat\ndog\nbird\n";
  ImportOptions o;
  o.features_path = dir.file("x.npy");
  o.labels_path = dir.file("y.npy");
  o.class_names_path = dir.file("names.txt");
  o.text_embeddings_path = dir.file("t.npy");
  o.image_sizes_path = dir.file("sizes.npy");
  FeatureSet s = import_embeddings(o);
  CHECK(s.size() == 30);
  CHECK(s.dim() == 12);
  CHECK(s.features.scalar_type() == at::kFloat);
  CHECK((s.features.norm(2, 1) - 1).abs().max().item<float>() < 1e-5f);
  CHECK(s.labels.scalar_type() == at::kLong);
  CHECK(s.class_names == std::vector<std::string>{"cat", "dog", "bird"});
  CHECK(s.class_embeddings.sizes().vec() == std::vector<int64_t>{3, 12});
  CHECK(s.image_sizes.scalar_type() == at::kInt);
  CHECK(s.ids[5] == "x/5");

  o.normalize = false;
  CHECK(import_embeddings(o).features.allclose(x.to(at::kFloat)));

  SECTION("errors") {
    ImportOptions b = o;
    write_npy(dir.file("y_short.npy"), at::zeros({29}, at::kLong));
    b.labels_path = dir.file("y_short.npy");
    CHECK(contains(error_of([&] { import_embeddings(b); }), "29 labels"));
    b = o;
    write_npy(dir.file("y_big.npy"), at::full({30}, 3, at::kLong));
    b.labels_path = dir.file("y_big.npy");
    CHECK(contains(error_of([&] { import_embeddings(b); }), "label 3 is outside [0, 3)"));
    b = o;
    at::Tensor z = x.clone();
    z[4].zero_();
    write_npy(dir.file("z.npy"), z);
    b.features_path = dir.file("z.npy");
    b.normalize = true;
    CHECK(contains(error_of([&] { import_embeddings(b); }), "z.npy: row 4 has zero norm"));
    b = o;
    write_npy(dir.file("t_bad.npy"), at::randn({3, 11}));
    b.text_embeddings_path = dir.file("t_bad.npy");
    CHECK(contains(error_of([&] { import_embeddings(b); }), "dimension 11"));
    b = o;
    b.labels_path = dir.file("x.npy");
    CHECK(contains(error_of([&] { import_embeddings(b); }), "labels must be integers"));
  }
}

TEST_CASE("import from .npz keys with default class names", "[importer]") {
  TempDir dir("importnpz");
  // A stored zip of two .npy images (what numpy.savez writes).
  at::Tensor x = at::randn({8, 4}).to(at::kHalf);
  at::Tensor y = at::tensor(std::vector<int64_t>{0, 1, 2, 3, 4, 0, 1, 2});
  std::ofstream(dir.file("a.npz"), std::ios::binary)
      << test::make_zip({{"emb.npy", encode_npy(x)}, {"lab.npy", encode_npy(y)}});

  ImportOptions o;
  o.features_path = dir.file("a.npz");
  o.features_key = "emb";
  o.labels_path = dir.file("a.npz");
  o.labels_key = "lab";
  FeatureSet s = import_embeddings(o);
  CHECK(s.size() == 8);
  CHECK(s.num_classes() == 5);
  CHECK(s.class_names[4] == "class_4");
  o.features_key = "";
  CHECK(contains(error_of([&] { import_embeddings(o); }), "holds 2 arrays"));
  o.features_key = "nope";
  CHECK(contains(error_of([&] { import_embeddings(o); }), "no array named 'nope'"));
}

TEST_CASE("import concatenates sources, each labels file with its own classes", "[importer]") {
  TempDir dir("import_multi");
  at::Tensor a = at::tensor({3.0f, 4.0f, 0.0f, 2.0f}).reshape({2, 2});
  at::Tensor b = at::tensor({0.0f, 5.0f}).reshape({1, 2});
  at::Tensor c = at::tensor({1.0f, 0.0f, 1.0f, 1.0f, -2.0f, 0.0f}).reshape({3, 2});
  write_npy(dir.file("a.npy"), a);
  write_npy(dir.file("b.npy"), b);
  write_npy(dir.file("c.npy"), c);
  write_npy(dir.file("la.npy"), at::tensor({0, 2}, at::kLong));  // dataset 1: classes 0..2
  write_npy(dir.file("lb.npy"), at::tensor({1}, at::kLong));
  write_npy(dir.file("lc.npy"), at::tensor({1, 0, 1}, at::kLong));  // dataset 2: classes 0..1
  ImportOptions o;
  o.features_path = dir.file("a.npy");
  o.labels_path = dir.file("la.npy");
  o.more_rows = {{dir.file("b.npy"), "", dir.file("lb.npy"), ""}, {dir.file("c.npy"), "", dir.file("lc.npy"), ""}};
  FeatureSet s = import_embeddings(o);
  // Files: la (max 2 -> 3 classes), lb (max 1 -> 2 classes), lc (max 1 -> 2 classes): offsets 0, 3, 5.
  CHECK(s.size() == 6);
  CHECK(s.num_classes() == 7);
  CHECK(s.labels.equal(at::tensor({0, 2, 4, 6, 5, 6}, at::kLong)));
  // Rows by hand: (3,4)/5, (0,2)/2, (0,5)/5, (1,0), (1,1)/sqrt2, (-2,0)/2.
  const float r = 1.0f / std::sqrt(2.0f);
  at::Tensor expect = at::tensor({0.6f, 0.8f, 0.f, 1.f, 0.f, 1.f, 1.f, 0.f, r, r, -1.f, 0.f}).reshape({6, 2});
  CHECK((s.features - expect).abs().max().item<float>() < 1e-6f);
  CHECK(s.ids[0] == "a/0");
  CHECK(s.ids[2] == "b/0");
  CHECK(s.ids[5] == "c/2");

  // Two sources sharing one labels file share its classes.
  ImportOptions same = o;
  same.more_rows = {{dir.file("a.npy"), "", dir.file("la.npy"), ""}};
  FeatureSet t = import_embeddings(same);
  CHECK(t.num_classes() == 3);
  CHECK(t.labels.equal(at::tensor({0, 2, 0, 2}, at::kLong)));

  ImportOptions named = o;
  std::ofstream(dir.file("names.txt")) << "x\ny\nz\n";
  named.class_names_path = dir.file("names.txt");
  CHECK(contains(error_of([&] { import_embeddings(named); }), "disjoint classes"));
  ImportOptions wide = o;
  write_npy(dir.file("w.npy"), at::ones({1, 3}));
  wide.more_rows[1].features_path = dir.file("w.npy");
  wide.more_rows[1].labels_path = dir.file("lb.npy");
  CHECK(contains(error_of([&] { import_embeddings(wide); }), "dimension 3"));
}

namespace {
std::string fixture(const std::string& name) { return semcodec::test::fixture_path(name); }
}  // namespace

// The expected values are the ones the release fixtures' author exported with
// NumPy from the same tensors (release_features_expected.npz), not ours.
TEST_CASE("import reads the release's torch.save (features, labels) and text-feature files", "[importer]") {
  const auto npz = read_npz(fixture("release_features_expected.npz"));
  const at::Tensor want_x = npy_to_tensor(npz.at("features"), false, "features");
  const at::Tensor want_y = npy_to_tensor(npz.at("labels"), false, "labels");
  const at::Tensor want_t = npy_to_tensor(npz.at("text"), false, "text");
  REQUIRE(want_x.sizes() == at::IntArrayRef({20, 768}));

  ImportOptions o;
  o.features_path = fixture("release_features_cuda_fp16.pt");  // no keys: a (features, labels) tuple
  o.labels_path = fixture("release_features_cuda_fp16.pt");
  o.text_embeddings_path = fixture("release_text_features.pt");  // a bare tensor
  o.normalize = false;
  FeatureSet s = import_embeddings(o);
  CHECK(at::equal(s.features, want_x));  // float16 -> float32 is exact
  CHECK(at::equal(s.labels, want_y));
  CHECK(at::equal(s.class_embeddings, want_t));
  CHECK(s.num_classes() == 5);
  CHECK(s.ids[3] == "release_features_cuda_fp16/3");

  // Normalized rows against the expected values divided by their norms in double precision.
  o.normalize = true;
  const at::Tensor want_unit = (want_x.to(at::kDouble) / want_x.to(at::kDouble).norm(2, 1, true)).to(at::kFloat);
  CHECK((import_embeddings(o).features - want_unit).abs().max().item<float>() < 1e-7f);

  // Explicit keys, as `import --features f.pt:0 --labels f.pt:1` gives them.
  ImportOptions k = o;
  k.features_key = "0";
  k.labels_key = "1";
  CHECK(at::equal(import_embeddings(k).labels, want_y));

  SECTION("bad keys and files name the file and the problem") {
    ImportOptions b = o;
    b.features_key = "2";
    const std::string e = error_of([&] { import_embeddings(b); });
    CHECK(contains(e, "release_features_cuda_fp16.pt: no tensor named '2' (the features); it holds 0, 1"));
    b = o;
    b.text_embeddings_path = fixture("release_features_cuda_fp16.pt");  // two tensors, no default for text
    CHECK(contains(error_of([&] { import_embeddings(b); }), "holds 2 tensors (0, 1); say which one is the text embeddings"));
    b = o;
    b.features_path = fixture("torch_save_os_system.pt");  // a hostile pickle: refused, nothing run
    CHECK(contains(error_of([&] { import_embeddings(b); }), "posix.system"));
    b = o;
    b.features_path = fixture("README.md");
    CHECK(contains(error_of([&] { import_embeddings(b); }), "README.md: not a .npy, .npz or PyTorch (.pt) file"));
    TempDir dir("import_pt");
    std::ofstream(dir.file("legacy.pt"), std::ios::binary) << std::string("\x80\x02\x8a\x0a", 4) << "legacy";
    b = o;
    b.features_path = dir.file("legacy.pt");
    CHECK(contains(error_of([&] { import_embeddings(b); }), "legacy.pt: a legacy (non-zip) torch.save file"));
    b = o;
    b.features_path = dir.file("absent.pt");
    CHECK(contains(error_of([&] { import_embeddings(b); }), "absent.pt: cannot open features file"));
  }
}

TEST_CASE("import refuses labels that would make a huge class list, at once", "[importer]") {
  TempDir dir("importlabels");
  write_npy(dir.file("x.npy"), at::randn({2, 4}));
  // 144 bytes: a 128-byte header and two int64 labels, one of them 1e12.
  write_npy(dir.file("y.npy"), at::tensor(std::vector<int64_t>{0, 1000000000000}));
  REQUIRE(std::filesystem::file_size(dir.file("y.npy")) == 144);
  ImportOptions o;
  o.features_path = dir.file("x.npy");
  o.labels_path = dir.file("y.npy");
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(error_of([&] { import_embeddings(o); }) ==
        dir.file("y.npy") +
            ": label 1000000000000 is too large: without a class list the classes come from the labels, and 2 rows may "
            "make at most 1024 (max(1024, 16 x rows), never more than 1048576); give --class-names, "
            "--text-embeddings or --num-classes");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  // The bound grows with the rows (16 per row) but never past 2^20 classes.
  write_npy(dir.file("x100.npy"), at::randn({100, 4}));
  write_npy(dir.file("y100.npy"), at::full({100}, 1599, at::kLong));
  o.features_path = dir.file("x100.npy");
  o.labels_path = dir.file("y100.npy");
  CHECK(import_embeddings(o).num_classes() == 1600);
  write_npy(dir.file("y100b.npy"), at::full({100}, 1600, at::kLong));
  o.labels_path = dir.file("y100b.npy");
  CHECK(contains(error_of([&] { import_embeddings(o); }), "label 1600 is too large"));
  // A class count given explicitly is bounded too; labels beyond it are refused as before.
  o.labels_path = dir.file("y.npy");
  o.features_path = dir.file("x.npy");
  o.num_classes = 1000000000000;
  CHECK(error_of([&] { import_embeddings(o); }) == "import: num_classes 1000000000000 is outside [0, 1048576]");
  o.num_classes = 3;
  CHECK(error_of([&] { import_embeddings(o); }) ==
        dir.file("y.npy") + ": label 1000000000000 is outside [0, 3) classes");
}

TEST_CASE("import bounds each labels file's classes when it concatenates several", "[importer]") {
  TempDir dir("importlabelsmulti");
  write_npy(dir.file("x.npy"), at::randn({2, 4}));
  write_npy(dir.file("ya.npy"), at::tensor(std::vector<int64_t>{0, 1}));
  write_npy(dir.file("yb.npy"), at::tensor(std::vector<int64_t>{0, 1000000000000}));
  ImportOptions o;
  o.features_path = dir.file("x.npy");
  o.labels_path = dir.file("ya.npy");
  o.more_rows = {{dir.file("x.npy"), "", dir.file("yb.npy"), ""}};
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(error_of([&] { import_embeddings(o); }) ==
        dir.file("yb.npy") +
            ": label 1000000000000 is too large: without a class list the classes come from the labels, and 2 rows may "
            "make at most 1024 (max(1024, 16 x rows), never more than 1048576); with several labels files, each "
            "file's classes come from its labels");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  // Within the bound, the second file's classes follow the first's.
  write_npy(dir.file("yc.npy"), at::tensor(std::vector<int64_t>{0, 1023}));
  o.more_rows[0].labels_path = dir.file("yc.npy");
  const FeatureSet s = import_embeddings(o);
  CHECK(s.num_classes() == 2 + 1024);
  CHECK(s.labels.equal(at::tensor(std::vector<int64_t>{0, 1, 2, 1025})));
}

TEST_CASE("import: every line of a class-name list is a class, '#' included", "[importer]") {
  TempDir dir("importnames");
  write_npy(dir.file("x.npy"), at::randn({3, 4}));
  write_npy(dir.file("y.npy"), at::tensor(std::vector<int64_t>{0, 1, 2}));
  ImportOptions o;
  o.features_path = dir.file("x.npy");
  o.labels_path = dir.file("y.npy");
  o.class_names_path = dir.file("names.txt");
  std::ofstream(dir.file("names.txt")) << "cat\n#2 dog\n  bird \r\n\n";
  CHECK(import_embeddings(o).class_names == std::vector<std::string>{"cat", "#2 dog", "bird"});
  std::ofstream(dir.file("names.txt")) << "cat\n\nbird\n";
  CHECK(error_of([&] { import_embeddings(o); }) ==
        dir.file("names.txt") +
            ":2: empty line in a class list (every line is one class, so a blank line would shift the classes after it)");
}

TEST_CASE("import from .npz reads only the members it names", "[importer]") {
  TempDir dir("importnpzmember");
  const at::Tensor x = at::randn({4, 3});
  std::string zip = test::make_zip({{"emb.npy", encode_npy(x)},
                                    {"lab.npy", encode_npy(at::tensor(std::vector<int64_t>{0, 1, 0, 1}))},
                                    {"junk.npy", encode_npy(at::zeros({64}))}},
                                   false, true);
  const size_t junk = zip.find(test::raw_deflate(encode_npy(at::zeros({64}))));
  REQUIRE(junk != std::string::npos);
  zip[junk + 5] ^= 0x33;  // damage the junk member's deflate stream
  std::ofstream(dir.file("b.npz"), std::ios::binary) << zip;
  ImportOptions o;
  o.features_path = o.labels_path = dir.file("b.npz");
  o.features_key = "emb";
  o.labels_key = "lab";
  o.normalize = false;
  CHECK(import_embeddings(o).features.equal(x));
  o.labels_key = "junk";
  CHECK_THAT(error_of([&] { import_embeddings(o); }), Catch::StartsWith(dir.file("b.npz") + ": zip entry 'junk.npy': "));
}
