#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>

#include "data/npy.h"
#include "data/zip_archive.h"
#include "npy_bytes.h"
#include "test_support.h"
#include "util/error.h"
#include "zip_writer.h"

using namespace semcodec;
using semcodec::test::make_zip;
using semcodec::test::npy_with_header;
using semcodec::test::TempDir;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void require_error_mentions(const std::function<void()>& f, const std::string& a, const std::string& b) {
  try {
    f();
    FAIL("expected semcodec::Error");
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(a) != std::string::npos);
    CHECK(std::string(e.what()).find(b) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("npy round trip keeps dtype, shape and values", "[npy]") {
  TempDir dir("npy");
  at::manual_seed(1);
  std::vector<at::Tensor> cases = {
      at::randn({3, 4}),
      at::randn({5}, at::kDouble),
      at::randn({2, 3, 2}).to(at::kHalf),
      at::randint(-100, 100, {7}, at::kChar),
      at::randint(-30000, 30000, {2, 2}, at::kShort),
      at::randint(-100000, 100000, {4, 1}, at::kInt),
      at::randint(-1000000, 1000000, {6}, at::kLong),
      at::randint(0, 255, {3, 3}, at::kByte),
      at::randint(0, 2, {5}, at::kLong).to(at::kBool),
      at::zeros({0, 3}),
      at::tensor(3.5),
  };
  int k = 0;
  for (const auto& t : cases) {
    const std::string path = dir.file("a" + std::to_string(k++) + ".npy");
    write_npy(path, t);
    NpyArray a = read_npy(path);
    CHECK(a.shape == t.sizes().vec());
    at::Tensor back = npy_to_tensor(a);
    CHECK(back.scalar_type() == t.scalar_type());
    CHECK(back.equal(t));
  }
  at::Tensor h = at::randn({4, 4}).to(at::kHalf);
  write_npy(dir.file("h.npy"), h);
  at::Tensor f = npy_to_tensor(read_npy(dir.file("h.npy")), /*half_to_float=*/true);
  CHECK(f.scalar_type() == at::kFloat);
  CHECK(f.equal(h.to(at::kFloat)));
}

TEST_CASE("npy header is byte-exact with numpy's format 1.0", "[npy]") {
  at::Tensor t = at::tensor(std::vector<int64_t>{1, 2, 3});
  const std::string bytes = encode_npy(t);
  std::string dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
  std::string expected("\x93NUMPY\x01\x00\x76\x00", 10);
  expected += dict + std::string(118 - dict.size() - 1, ' ') + "\n";
  REQUIRE(bytes.size() == 128 + 24);
  CHECK(bytes.substr(0, 128) == expected);
  CHECK(std::memcmp(bytes.data() + 128, t.data_ptr(), 24) == 0);

  std::string dict2 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(encode_npy(at::zeros({2, 3})).substr(10, dict2.size()) == dict2);
}

TEST_CASE("npy reader handles versions 2.0/3.0, big-endian and Fortran order", "[npy]") {
  // big-endian int32 [2, 3] in Fortran order: columns stored first.
  std::vector<int32_t> c_order = {1, 2, 3, 4, 5, 6};  // [[1,2,3],[4,5,6]]
  std::vector<int32_t> f_order = {1, 4, 2, 5, 3, 6};
  std::string payload;
  for (int32_t v : f_order) {
    payload.push_back(char((v >> 24) & 0xFF)); payload.push_back(char((v >> 16) & 0xFF));
    payload.push_back(char((v >> 8) & 0xFF)); payload.push_back(char(v & 0xFF));
  }
  for (int major : {1, 2, 3}) {
    auto bytes = npy_with_header(major, "{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3), }", payload);
    NpyArray a = parse_npy(bytes, "fortran.npy");
    CHECK(a.dtype == "<i4");
    CHECK(a.shape == std::vector<int64_t>{2, 3});
    at::Tensor t = npy_to_tensor(a);
    CHECK(t.equal(at::from_blob(c_order.data(), {2, 3}, at::kInt)));
  }
  // Unsigned widths LibTorch lacks come back widened.
  std::string u;
  for (uint16_t v : {uint16_t{1}, uint16_t{65535}}) { u.push_back(char(v & 0xFF)); u.push_back(char(v >> 8)); }
  at::Tensor w = npy_to_tensor(parse_npy(npy_with_header(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", u), "u.npy"));
  CHECK(w.scalar_type() == at::kInt);
  CHECK(w[1].item<int32_t>() == 65535);
}

TEST_CASE("corrupt npy files fail with the file name", "[npy]") {
  TempDir dir("npybad");
  const std::string good = encode_npy(at::arange(10, at::kFloat));
  const std::string p = dir.file("bad.npy");
  auto expect = [&](const std::string& bytes, const std::string& what) {
    write_bytes(p, bytes);
    require_error_mentions([&] { read_npy(p); }, "bad.npy", what);
    require_error_mentions([&] { parse_npy(bytes, p); }, "bad.npy", what);
  };
  expect(good.substr(0, good.size() - 3), "truncated");
  expect(good.substr(0, 40), "truncated");
  expect("\x93NUMPX" + good.substr(6), "bad magic");
  expect("hello", "bad magic");
  expect(npy_with_header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", std::string(40, '\0')),
         "truncated");
  expect(npy_with_header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }", ""),
         "too large");
  expect(npy_with_header(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')),
         "unsupported .npy dtype");
  expect(npy_with_header(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", std::string(4, '\0')),
         "structured");
  expect(npy_with_header(1, "{'descr': '<f4', 'shape': (1,), }", std::string(4, '\0')), "missing");
  expect(npy_with_header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", ""), "malformed");
  expect(good + "xx", "trailing");
  // A header length pointing far beyond the file.
  std::string huge = good;
  huge[8] = '\xff';
  huge[9] = '\xff';
  expect(huge, "truncated");
  std::string v2("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12);
  expect(v2, "implausibly large");
  require_error_mentions([&] { read_npy(dir.file("missing.npy")); }, "missing.npy", "cannot open");
}

TEST_CASE("npz archives, stored and deflated", "[npy]") {
  TempDir dir("npz");
  at::Tensor x = at::randn({20, 8});
  at::Tensor y = at::arange(20, at::kLong);
  std::vector<std::pair<std::string, std::string>> files = {{"features.npy", encode_npy(x)}, {"labels.npy", encode_npy(y)}};
  for (bool deflated : {false, true}) {
    const std::string p = dir.file(deflated ? "c.npz" : "s.npz");
    write_bytes(p, make_zip(files, false, deflated));
    auto arrays = read_npz(p);
    REQUIRE(arrays.size() == 2);
    CHECK(npy_to_tensor(arrays.at("features")).equal(x));
    CHECK(npy_to_tensor(arrays.at("labels")).equal(y));
  }
  // Damaged archives name the file.
  std::string zip = make_zip(files, false, true);
  write_bytes(dir.file("t.npz"), zip.substr(0, zip.size() / 2));
  require_error_mentions([&] { read_npz(dir.file("t.npz")); }, "t.npz", "zip");
  std::string flipped = zip;
  flipped[64 + 20] ^= 0x55;  // inside the first deflated entry (its data starts at 64)
  write_bytes(dir.file("f.npz"), flipped);
  require_error_mentions([&] { read_npz(dir.file("f.npz")); }, "f.npz: zip entry 'features.npy'", "");
}

TEST_CASE("the paper's ImageNet 800/200 split files parse", "[npy]") {
  // In the repository (configs/splits/imagenet-800-200/README.md).
  const std::string dir = std::string(SEMCODEC_SOURCE_DIR) + "/configs/splits/imagenet-800-200/";
  const std::string train = dir + "train_classes.npy", held = dir + "heldout_classes.npy";
  at::Tensor a = npy_to_tensor(read_npy(train));
  at::Tensor b = npy_to_tensor(read_npy(held));
  CHECK(a.scalar_type() == at::kLong);
  CHECK(a.numel() == 800);
  CHECK(b.numel() == 200);
  at::Tensor all = std::get<0>(at::sort(at::cat({a, b})));
  CHECK(all.equal(at::arange(1000, at::kLong)));
}

TEST_CASE("mutated npy and npz bytes never crash the parsers", "[npy]") {
  const std::string good = encode_npy(at::arange(24, at::kFloat).reshape({2, 3, 4}));
  std::vector<std::pair<std::string, std::string>> files = {{"a.npy", good}};
  const std::string zip = make_zip(files, false, true);
  TempDir dir("npyfuzz");
  uint64_t state = 12345;
  auto next = [&] { state = state * 6364136223846793005ull + 1442695040888963407ull; return state >> 33; };
  int errors = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::string b = good;
    for (int k = 0; k < 1 + static_cast<int>(next() % 4); ++k) b[next() % 140] = static_cast<char>(next());
    try { parse_npy(b, "m.npy"); } catch (const Error&) { ++errors; }
    std::string z = zip;
    for (int k = 0; k < 1 + static_cast<int>(next() % 4); ++k) z[next() % z.size()] = static_cast<char>(next());
    write_bytes(dir.file("m.npz"), z);
    try { read_npz(dir.file("m.npz")); } catch (const Error&) { ++errors; }
  }
  CHECK(errors > 0);
}

namespace {
void set_le32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
using semcodec::test::error_of;
}  // namespace

TEST_CASE("npz: only the member asked for is inflated", "[npy]") {
  TempDir dir("npzmember");
  const at::Tensor x = at::randn({5, 3});
  std::string zip = make_zip({{"features.npy", encode_npy(x)}, {"other.npy", encode_npy(at::arange(100, at::kLong))}},
                             false, true);
  // Damage the second member's deflate stream: reading it fails, the first is untouched.
  const size_t second = zip.find("PK\x03\x04", 4);
  REQUIRE(second != std::string::npos);
  zip[second + 64] ^= 0x5A;
  write_bytes(dir.file("m.npz"), zip);
  const NpzReader npz(dir.file("m.npz"));
  CHECK(npz.keys() == std::vector<std::string>{"features", "other"});
  CHECK(npy_to_tensor(npz.read("features")).equal(x));
  CHECK_THAT(error_of([&] { npz.read("other"); }), Catch::StartsWith(dir.file("m.npz") + ": zip entry 'other.npy': "));
  CHECK(error_of([&] { npz.read("nope"); }) == dir.file("m.npz") + ": no array named 'nope' (it holds: features, other)");
}

TEST_CASE("npz: members that overlap are refused before anything is inflated", "[npy]") {
  TempDir dir("npzoverlap");
  std::string zip = make_zip({{"a.npy", encode_npy(at::arange(8, at::kFloat))}, {"b.npy", encode_npy(at::ones({4}))}});
  // Make a's data run over b's local header (sizes in a's local header and central record).
  const size_t b_header = zip.find("PK\x03\x04", 4);
  const size_t a_central = zip.find("PK\x01\x02");
  REQUIRE(b_header != std::string::npos);
  REQUIRE(a_central != std::string::npos);
  const uint32_t a_data = 64, a_size = static_cast<uint32_t>(b_header + 10 - a_data);
  for (size_t at : {size_t{18}, size_t{22}, a_central + 20, a_central + 24}) set_le32(zip, at, a_size);
  const std::string p = dir.file("overlap.npz");
  write_bytes(p, zip);
  REQUIRE(zip.substr(30, 5) == "a.npy");
  CHECK(error_of([&] { NpzReader{p}; }) ==
        fmt::format("{}: zip entries 'a.npy' and 'b.npy' overlap (bytes 0-{} and {}-): the archive is corrupt or hostile",
                    p, b_header + 10, b_header));
  CHECK(error_of([&] { read_npz(p); }) == error_of([&] { NpzReader{p}; }));
}
