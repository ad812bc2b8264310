// Issue 15's hostile data-layer inputs through the real binary: each exits 1
// with exactly the library's message (naming the file and the problem) and
// leaves no output behind, never a crash or a half-written file.
#include <ATen/ATen.h>
#include <hdf5.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "cli_runner.h"
#include "data/feature_store.h"
#include "data/npy.h"
#include "test_support.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "zip_writer.h"

using namespace semcodec;
using semcodec::test::TempDir;
namespace fs = std::filesystem;

namespace {

using test::Run;
Run run(const std::string& args) { return test::run_cli(args); }
std::string fixture(const std::string& name) { return test::fixture_path(name); }

// Only these names may be in the folder afterwards (no output, no temporary file).
void require_only(const TempDir& d, std::vector<std::string> names) {
  std::vector<std::string> have;
  for (const auto& e : fs::directory_iterator(d.path())) have.push_back(e.path().filename().string());
  std::sort(have.begin(), have.end());
  std::sort(names.begin(), names.end());
  CHECK(have == names);
}

// Grows the row-indexed datasets to `rows` rows without writing them.
void claim_rows(const std::string& path, hsize_t rows) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  for (const char* name : {"features", "labels", "ids"}) {
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = H5Dget_space(ds);
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(s, dims, nullptr);
    dims[0] = rows;
    REQUIRE(H5Dset_extent(ds, dims) >= 0);
    H5Sclose(s);
    H5Dclose(ds);
  }
  H5Fclose(f);
}

}  // namespace

TEST_CASE("a feature file claiming 2^26 rows is refused at once by info, train and eval", "[cli][hostile]") {
  TempDir d("cli-claim");
  const std::string p = test::small_feature_file(d, "claims.h5");
  claim_rows(p, hsize_t{1} << 26);
  test::write_text(d.file("model.yaml"), test::kSmallModelYaml);
  std::string message;
  try {
    inspect_feature_file(p);
  } catch (const Error& e) {
    message = e.what();
  }
  REQUIRE_THAT(message, Catch::StartsWith(p + ": 'features' declares [67108864, 64] elements of 4 bytes"));
  const auto t0 = std::chrono::steady_clock::now();
  const Run info = run("info " + p);
  CHECK(info.code == 1);
  CHECK(info.output == "semcodec: error: " + message + "\n");
  const Run train = run("train -c " + d.file("model.yaml") + " --features " + p + " -o " + d.file("run"));
  CHECK(train.code == 1);
  CHECK_THAT(train.output, Catch::EndsWith("semcodec: error: " + message + "\n"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
  CHECK_FALSE(fs::exists(d.file("run/last.safetensors")));
}

TEST_CASE("the feature files that crashed libhdf5 are refused cleanly", "[cli][hostile]") {
  // Mutants from the campaign (tests/fixtures/README.md). A variable-length
  // string whose global heap object overruns its collection (H5HG_read read
  // past its buffer) is refused by the checked string reader.
  const std::string heap = fixture("feature_file_heap_7bytes.h5");
  const Run info = run("info " + heap);
  CHECK(info.code == 1);
  CHECK(info.output ==
        "semcodec: error: " + heap + ": object 12 of the global heap collection at 2048 overruns it (damaged file)\n");
  // An attribute message that made libhdf5's object-header code dereference a
  // bad pointer under AddressSanitizer: a normal build reads past the damage,
  // a crash would become the probe's error. Never a signal in this process.
  const std::string attr = fixture("feature_file_attr_int16.h5");
  const Run a = run("info " + attr);
  INFO(a.output);
  CHECK((a.code == 0 || a.output == "semcodec: error: " + attr +
                                        ": damaged file: libhdf5 crashed (signal 11, Segmentation fault) while "
                                        "reading its metadata\n"));
  CHECK(a.code != -1);
}

TEST_CASE("import: an .npz whose members overlap, a 1e12 label, '#' class names", "[cli][hostile]") {
  TempDir d("cli-import");
  write_npy(d.file("x.npy"), at::randn({2, 4}));
  SECTION("overlapping members are refused before anything is inflated") {
    std::string zip = test::make_zip({{"a.npy", encode_npy(at::randn({2, 4}))}, {"b.npy", encode_npy(at::arange(2, at::kLong))}});
    const size_t b_header = zip.find("PK\x03\x04", 4), a_central = zip.find("PK\x01\x02");
    const uint32_t a_size = static_cast<uint32_t>(b_header + 10 - 64);
    for (size_t at : {size_t{18}, size_t{22}, a_central + 20, a_central + 24})
      for (int i = 0; i < 4; ++i) zip[at + i] = static_cast<char>((a_size >> (8 * i)) & 0xFF);
    std::ofstream(d.file("o.npz"), std::ios::binary) << zip;
    const Run r = run("import --features " + d.file("o.npz") + ":a --labels " + d.file("o.npz") + ":b -o " + d.file("out.h5"));
    CHECK(r.code == 1);
    CHECK(r.output == fmt::format("semcodec: error: {}: zip entries 'a.npy' and 'b.npy' overlap (bytes 0-{} and {}-): "
                                  "the archive is corrupt or hostile\n",
                                  d.file("o.npz"), b_header + 10, b_header));
    require_only(d, {"x.npy", "o.npz"});
  }
  SECTION("a 144-byte labels file holding 1e12") {
    write_npy(d.file("y.npy"), at::tensor(std::vector<int64_t>{0, 1000000000000}));
    REQUIRE(fs::file_size(d.file("y.npy")) == 144);
    const auto t0 = std::chrono::steady_clock::now();
    const Run r = run("import --features " + d.file("x.npy") + " --labels " + d.file("y.npy") + " -o " + d.file("out.h5"));
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
    CHECK(r.code == 1);
    CHECK(r.output == "semcodec: error: " + d.file("y.npy") +
                          ": label 1000000000000 is too large: without a class list the classes come from the labels, "
                          "and 2 rows may make at most 1024 (max(1024, 16 x rows), never more than 1048576); give "
                          "--class-names, --text-embeddings or --num-classes\n");
    require_only(d, {"x.npy", "y.npy"});
  }
  SECTION("a class named '#...' is a class; a blank line inside the list is an error") {
    write_npy(d.file("y.npy"), at::tensor(std::vector<int64_t>{0, 1}));
    test::write_text(d.file("names.txt"), "#0 cat\ndog\n");
    const Run ok = run("import --features " + d.file("x.npy") + " --labels " + d.file("y.npy") + " --class-names " +
                       d.file("names.txt") + " -o " + d.file("out.h5"));
    INFO(ok.output);
    REQUIRE(ok.code == 0);
    CHECK(read_feature_file(d.file("out.h5")).class_names == std::vector<std::string>{"#0 cat", "dog"});
    test::write_text(d.file("gap.txt"), "cat\n\ndog\n");
    const Run bad = run("import --features " + d.file("x.npy") + " --labels " + d.file("y.npy") + " --class-names " +
                        d.file("gap.txt") + " -o " + d.file("out2.h5"));
    CHECK(bad.code == 1);
    CHECK(bad.output == "semcodec: error: " + d.file("gap.txt") +
                            ":2: empty line in a class list (every line is one class, so a blank line would shift "
                            "the classes after it)\n");
    require_only(d, {"x.npy", "y.npy", "names.txt", "gap.txt", "out.h5"});
  }
}

TEST_CASE("extract and embed-text refuse an OpenAI-style archive whose __setstate__ would run, printing nothing of it",
          "[cli][hostile]") {
  TempDir d("cli-setstate");
  std::filesystem::create_directories(d.file("zoo/cat"));
  const std::string model = fixture("torchscript_setstate_loop.pt");
  const std::string features = test::small_feature_file(d, "f.h5");
  for (const std::string cmd : {"extract -m " + model + " --root " + d.file("zoo") + " -o " + d.file("out.h5"),
                                "embed-text -m " + model + " --bpe " + fixture("clip-tiny/tokenizer/bpe_simple_vocab_16e6.txt.gz") +
                                    " --features " + features}) {
    INFO(cmd);
    const Run r = run(cmd);
    CHECK(r.code == 1);
    // One line: semcodec's error naming the file and the refused class; nothing the archive's code would print.
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    CHECK_THAT(r.output, Catch::StartsWith("semcodec: error: " + model) && Catch::Contains("'__torch__.SetStateLoop'"));
    CHECK_FALSE(fs::exists(d.file("out.h5")));
  }
}
