#include <ATen/ATen.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>

#include "data/npy.h"
#include "test_support.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::TempDir;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A .npy image with a hand-written header (version major.0, padded to 64).
std::string npy_with_header(int major, const std::string& dict, const std::string& payload) {
  const size_t len_bytes = major == 1 ? 2 : 4;
  size_t pre = 6 + 2 + len_bytes;
  size_t hlen = (pre + dict.size() + 1 + 63) / 64 * 64 - pre;
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t b = 0; b < len_bytes; ++b) out.push_back(static_cast<char>((hlen >> (8 * b)) & 0xFF));
  out += dict + std::string(hlen - dict.size() - 1, ' ') + "\n" + payload;
  return out;
}

void put16(std::string& s, uint32_t v) { s.push_back(char(v & 0xFF)); s.push_back(char((v >> 8) & 0xFF)); }
void put32(std::string& s, uint32_t v) { put16(s, v & 0xFFFF); put16(s, v >> 16); }

std::string raw_deflate(const std::string& in) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A minimal zip archive, as numpy.savez / savez_compressed write it.
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& files, bool deflated) {
  std::string body, central;
  for (const auto& [name, data] : files) {
    const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    const std::string stored = deflated ? raw_deflate(data) : data;
    const uint32_t offset = static_cast<uint32_t>(body.size());
    const uint16_t method = deflated ? 8 : 0;
    std::string lh("PK\x03\x04", 4);
    put16(lh, 20); put16(lh, 0); put16(lh, method); put16(lh, 0); put16(lh, 0x21);
    put32(lh, crc); put32(lh, static_cast<uint32_t>(stored.size())); put32(lh, static_cast<uint32_t>(data.size()));
    put16(lh, static_cast<uint32_t>(name.size())); put16(lh, 0);
    body += lh + name + stored;
    std::string ch("PK\x01\x02", 4);
    put16(ch, 20); put16(ch, 20); put16(ch, 0); put16(ch, method); put16(ch, 0); put16(ch, 0x21);
    put32(ch, crc); put32(ch, static_cast<uint32_t>(stored.size())); put32(ch, static_cast<uint32_t>(data.size()));
    put16(ch, static_cast<uint32_t>(name.size())); put16(ch, 0); put16(ch, 0); put16(ch, 0); put16(ch, 0);
    put32(ch, 0); put32(ch, offset);
    central += ch + name;
  }
  std::string eocd("PK\x05\x06", 4);
  put16(eocd, 0); put16(eocd, 0);
  put16(eocd, static_cast<uint32_t>(files.size())); put16(eocd, static_cast<uint32_t>(files.size()));
  put32(eocd, static_cast<uint32_t>(central.size())); put32(eocd, static_cast<uint32_t>(body.size()));
  put16(eocd, 0);
  return body + central + eocd;
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
    write_bytes(p, make_zip(files, deflated));
    auto arrays = read_npz(p);
    REQUIRE(arrays.size() == 2);
    CHECK(npy_to_tensor(arrays.at("features")).equal(x));
    CHECK(npy_to_tensor(arrays.at("labels")).equal(y));
  }
  // Damaged archives name the file.
  std::string zip = make_zip(files, true);
  write_bytes(dir.file("t.npz"), zip.substr(0, zip.size() / 2));
  require_error_mentions([&] { read_npz(dir.file("t.npz")); }, "t.npz", "zip");
  std::string flipped = zip;
  flipped[60] ^= 0x55;  // inside the first deflated entry
  write_bytes(dir.file("f.npz"), flipped);
  require_error_mentions([&] { read_npz(dir.file("f.npz")); }, "f.npz", "corrupt");
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
  const std::string zip = make_zip(files, true);
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
