#include <catch2/catch.hpp>

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "test_support.h"
#include "data/safetensors.h"
#include "util/atomic_file.h"
#include "util/error.h"

using namespace semcodec;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;

namespace {

std::string u64le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((v >> (8 * i)) & 0xff);
  return s;
}

// A file from a header JSON text and raw data, header padded to 8 bytes.
std::string make_file(std::string header, const std::string& data) {
  while (header.size() % 8 != 0) header += ' ';
  return u64le(header.size()) + header + data;
}

std::string raw_bytes(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && raw_bytes(a) == raw_bytes(b);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

// A tensor of `type` whose bytes are a deterministic pseudo-random pattern.
at::Tensor patterned(at::ScalarType type, std::vector<int64_t> shape, uint32_t seed) {
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(type));
  auto* p = static_cast<unsigned char*>(t.data_ptr());
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < t.nbytes(); ++i) {
    x = x * 1664525u + 1013904223u;
    p[i] = type == at::kBool ? (x >> 24) & 1 : (x >> 24);
  }
  return t;
}

template <class T>
void put(at::Tensor& t, int64_t i, T bits) {
  std::memcpy(static_cast<char*>(t.data_ptr()) + i * sizeof(T), &bits, sizeof(T));
}

}  // namespace

TEST_CASE("write_safetensors produces the exact bytes of the format", "[safetensors]") {
  test::TempDir dir("st-exact");
  {
    at::Tensor a = at::empty({2}, at::kFloat);
    a[0] = 1.0f;
    a[1] = -2.0f;
    write_safetensors(dir.file("a.safetensors"), {{"a", a}}, {});
    std::string expected = std::string("\x38\0\0\0\0\0\0\0", 8) +
                           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})" + "  " +
                           std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
    REQUIRE(expected.size() == 72);
    CHECK(read_file(dir.file("a.safetensors")) == expected);
    CHECK(serialize_safetensors({{"a", a}}) == expected);

    SafetensorsFile f = parse_safetensors(expected, "hand-built");
    REQUIRE(f.tensors.size() == 1);
    CHECK(f.metadata.empty());
    CHECK(same_bits(f.tensors.at("a"), a));
  }
  {
    // Two dtypes and metadata: metadata first, then larger elements first.
    at::Tensor b = at::full({1}, 5, at::kLong);
    at::Tensor a = at::empty({3}, at::kByte);
    for (int i = 0; i < 3; ++i) a[i] = i + 1;
    write_safetensors(dir.file("b.safetensors"), {{"a", a}, {"b", b}}, {{"format", "pt"}});
    std::string expected =
        std::string("\x90\0\0\0\0\0\0\0", 8) +
        R"({"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)" +
        R"("a":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}})" + "      " +
        std::string("\x05\0\0\0\0\0\0\0\x01\x02\x03", 11);
    REQUIRE(expected.size() == 8 + 144 + 11);
    CHECK(read_file(dir.file("b.safetensors")) == expected);
    SafetensorsFile f = read_safetensors(dir.file("b.safetensors"));
    CHECK(same_bits(f.tensors.at("a"), a));
    CHECK(same_bits(f.tensors.at("b"), b));
    CHECK((f.metadata == std::map<std::string, std::string>{{"format", "pt"}}));
  }
  // Writing is atomic: nothing but the target is left in the directory.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  CHECK(files == 2);
}

TEST_CASE("every dtype round-trips bit-exactly", "[safetensors]") {
  const std::vector<at::ScalarType> types = {at::kDouble, at::kFloat, at::kHalf, at::kBFloat16, at::kLong,
                                             at::kInt,    at::kShort, at::kChar, at::kByte,     at::kBool};
  std::map<std::string, at::Tensor> tensors;
  uint32_t seed = 0;
  for (auto type : types) {
    std::string name = std::string(c10::toString(type));
    tensors[name] = patterned(type, {3, 5}, ++seed);
    tensors[name + "_scalar"] = patterned(type, {}, ++seed);
    tensors[name + "_empty"] = at::empty({0, 4}, at::TensorOptions().dtype(type));
    tensors[name + "_3d"] = patterned(type, {2, 1, 3}, ++seed);
  }
  // NaN payloads, signed zeros and infinities must survive untouched.
  at::Tensor f32 = at::zeros({6}, at::kFloat);
  put<uint32_t>(f32, 0, 0x7fc00001u);
  put<uint32_t>(f32, 1, 0xffbfffffu);  // signalling NaN, sign bit set
  put<uint32_t>(f32, 2, 0x7f800001u);
  put<uint32_t>(f32, 3, 0x80000000u);  // -0
  put<uint32_t>(f32, 4, 0xff800000u);  // -inf
  put<uint32_t>(f32, 5, 0x00000001u);  // smallest subnormal
  tensors["nan_f32"] = f32;
  at::Tensor bf16 = at::zeros({4}, at::kBFloat16);
  put<uint16_t>(bf16, 0, 0x7fc1);
  put<uint16_t>(bf16, 1, 0xff81);
  put<uint16_t>(bf16, 2, 0x7f81);
  put<uint16_t>(bf16, 3, 0x8000);
  tensors["nan_bf16"] = bf16;
  at::Tensor f16 = at::zeros({4}, at::kHalf);
  put<uint16_t>(f16, 0, 0x7e01);
  put<uint16_t>(f16, 1, 0xfc01);
  put<uint16_t>(f16, 2, 0x7c01);
  put<uint16_t>(f16, 3, 0x8001);
  tensors["nan_f16"] = f16;
  // A non-contiguous view is written in C order.
  at::Tensor base = patterned(at::kFloat, {4, 6}, 99);
  tensors["transposed"] = base.t();
  tensors["sliced"] = base.slice(1, 1, 5, 2);

  test::TempDir dir("st-dtypes");
  const std::string path = dir.file("all.safetensors");
  write_safetensors(path, tensors, {});
  for (const SafetensorsFile& f : {read_safetensors(path), parse_safetensors(read_file(path), path)}) {
    REQUIRE(f.tensors.size() == tensors.size());
    for (const auto& [name, t] : tensors) {
      INFO(name);
      REQUIRE(f.tensors.count(name) == 1);
      const at::Tensor& r = f.tensors.at(name);
      CHECK(r.is_contiguous());
      CHECK(same_bits(r, t));
    }
  }
  CHECK(serialize_safetensors(tensors) == read_file(path));

  // Returned tensors own their memory: the source buffer can go away.
  at::Tensor kept;
  {
    std::string bytes = read_file(path);
    kept = parse_safetensors(bytes, path).tensors.at("nan_f32");
    std::fill(bytes.begin(), bytes.end(), '\xff');
  }
  CHECK(same_bits(kept, f32));

  // Tensors that need grad are written as their values.
  at::Tensor w = patterned(at::kFloat, {3}, 7).set_requires_grad(true);
  write_safetensors(path, {{"w", w}}, {});
  CHECK(same_bits(read_safetensors(path).tensors.at("w"), w.detach()));
}

TEST_CASE("metadata round-trips and can be read alone", "[safetensors]") {
  test::TempDir dir("st-meta");
  const std::string path = dir.file("m.safetensors");
  std::map<std::string, std::string> meta = {
      {"format", "pt"},
      {"config", R"({"k": 4, "name": "a \"quoted\" \\ value"})"},
      {"unicode", "Größe – 尺寸"},
      {"empty", ""},
      {"newline", "line1\nline2\ttab"},
  };
  write_safetensors(path, {{"x", at::arange(4, at::kFloat)}}, meta);
  CHECK(read_safetensors(path).metadata == meta);
  CHECK(read_safetensors_metadata(path) == meta);
  // A file with metadata and no tensors.
  write_safetensors(path, {}, meta);
  SafetensorsFile f = read_safetensors(path);
  CHECK(f.tensors.empty());
  CHECK(f.metadata == meta);
  // "__metadata__": null is accepted as empty.
  CHECK(parse_safetensors(make_file(R"({"__metadata__":null})", ""), "n").metadata.empty());
  // Header-only reading still validates the header against the file size.
  write_bytes(path, make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"));
  CHECK_THROWS_WITH(read_safetensors_metadata(path), Contains("out of range"));
}

TEST_CASE("every truncation of a file is an error, never a crash", "[safetensors]") {
  std::map<std::string, at::Tensor> tensors = {{"a", patterned(at::kFloat, {2, 3}, 1)},
                                               {"b", patterned(at::kBool, {5}, 2)},
                                               {"c", patterned(at::kHalf, {3}, 3)}};
  const std::string full = serialize_safetensors(tensors, {{"k", "v"}});
  REQUIRE_NOTHROW(parse_safetensors(full, "full"));
  test::TempDir dir("st-trunc");
  const std::string path = dir.file("t.safetensors");
  for (size_t len = 0; len < full.size(); ++len) {
    INFO("prefix length " << len);
    CHECK_THROWS_AS(parse_safetensors(std::string_view(full).substr(0, len), "t"), Error);
    write_bytes(path, full.substr(0, len));
    CHECK_THROWS_AS(read_safetensors(path), Error);
  }
  // Extra bytes after the data are an error too.
  CHECK_THROWS_WITH(parse_safetensors(full + "x", "t"), Contains("belong to no tensor"));
  CHECK_THROWS_WITH(read_safetensors(dir.file("missing.safetensors")), Contains("cannot open"));
}

TEST_CASE("single-byte corruption is accepted or rejected with semcodec::Error", "[safetensors]") {
  const std::string full = serialize_safetensors(
      {{"a", patterned(at::kFloat, {2, 2}, 1)}, {"m", patterned(at::kBool, {3}, 2)}}, {{"k", "v"}});
  const unsigned char values[] = {0x00, 0x01, 0x02, 0x20, 0x22, 0x2c, 0x2d, 0x30, 0x39, 0x5b, 0x7b, 0x7d, 0x80, 0xff};
  for (size_t i = 0; i < full.size(); ++i) {
    for (unsigned char v : values) {
      std::string bad = full;
      bad[i] = char(v);
      try {
        parse_safetensors(bad, "fuzz");
      } catch (const Error&) {
      } catch (const std::exception& e) {
        FAIL("byte " << i << " = " << int(v) << ": unexpected exception type: " << e.what());
      }
    }
  }
}

TEST_CASE("malformed headers are rejected with messages naming file and tensor", "[safetensors]") {
  auto parse = [](const std::string& header, const std::string& data) {
    return parse_safetensors(make_file(header, data), "ckpt.safetensors");
  };
  const std::string d8(8, '\0');

  SECTION("file shorter than the size field") {
    CHECK_THROWS_WITH(parse_safetensors("1234", "ckpt.safetensors"), Contains("ckpt.safetensors") && Contains("too short"));
  }
  SECTION("header size larger than the file") {
    std::string ok = make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d8);
    std::string bad = ok;
    bad.replace(0, 8, u64le(ok.size() - 8 + 1));
    CHECK_THROWS_WITH(parse_safetensors(bad, "ckpt.safetensors"), Contains("exceeds"));
    bad.replace(0, 8, u64le(uint64_t(1) << 62));
    CHECK_THROWS_WITH(parse_safetensors(bad, "ckpt.safetensors"), Contains("exceeds"));
    bad.replace(0, 8, u64le(~uint64_t(0)));
    CHECK_THROWS_WITH(parse_safetensors(bad, "ckpt.safetensors"), Contains("exceeds"));
    // Also through the file reader (no allocation of the claimed size).
    test::TempDir dir("st-huge");
    write_bytes(dir.file("h"), bad);
    CHECK_THROWS_WITH(read_safetensors(dir.file("h")), Contains("exceeds"));
  }
  SECTION("bad JSON") {
    CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", d8), Contains("not valid JSON"));
    CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}x)", d8), Contains("not valid JSON"));
    CHECK_THROWS_WITH(parse("{\"a\xff\":1}", ""), Contains("not valid JSON"));
    CHECK_THROWS_WITH(parse(R"(["a"])", ""), Contains("does not start with"));
    CHECK_THROWS_WITH(parse(std::string(16, ' '), ""), Contains("does not start with"));
    CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})", d8), Contains("nested"));
    CHECK_THROWS_WITH(parse(R"({"a":[1]})", ""), Contains("tensor 'a'") && Contains("must be a JSON object"));
  }
  SECTION("duplicate keys") {
    CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8),
                      Contains("twice"));
    CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d8),
                      Contains("twice"));
  }
  SECTION("unknown dtype") {
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", d8),
                      Contains("ckpt.safetensors: tensor 'w': unknown or unsupported dtype 'F8_E4M3'"));
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":7,"shape":[8],"data_offsets":[0,8]}})", d8), Contains("\"dtype\" must be a string"));
  }
  SECTION("missing and unexpected fields") {
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","shape":[8]}})", d8), Contains("tensor 'w': missing \"data_offsets\""));
    CHECK_THROWS_WITH(parse(R"({"w":{"shape":[8],"data_offsets":[0,8]}})", d8), Contains("missing \"dtype\""));
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","data_offsets":[0,8]}})", d8), Contains("missing \"shape\""));
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8],"x":1}})", d8),
                      Contains("unexpected field \"x\""));
  }
  SECTION("bad shapes") {
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","shape":[-8],"data_offsets":[0,8]}})", d8), Contains("non-negative integers"));
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","shape":[8.0],"data_offsets":[0,8]}})", d8), Contains("non-negative integers"));
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","shape":["8"],"data_offsets":[0,8]}})", d8), Contains("non-negative integers"));
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,8]}})", d8),
                      Contains("non-negative integers"));
    // Products that overflow 64 bits are caught, not wrapped.
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", ""),
                      Contains("too large"));
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", ""),
                      Contains("too large"));
  }
  SECTION("offsets out of range or malformed") {
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","shape":[8],"data_offsets":[0,9]}})", d8),
                      Contains("ckpt.safetensors: tensor 'w': data_offsets [0, 9] out of range"));
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}})", d8), Contains("out of range"));
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","shape":[8],"data_offsets":[0]}})", d8), Contains("two non-negative integers"));
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","shape":[8],"data_offsets":[-1,8]}})", d8), Contains("two non-negative integers"));
    CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8,8]}})", d8), Contains("two non-negative integers"));
  }
  SECTION("shape and offsets disagree") {
    CHECK_THROWS_WITH(parse(R"({"codebook":{"dtype":"F32","shape":[4,16],"data_offsets":[0,12]}})", std::string(12, '\0')),
                      Equals("ckpt.safetensors: tensor 'codebook': data_offsets [0, 12] do not match shape [4, 16] of F32 (256 bytes)"));
  }
  SECTION("overlapping tensors, gaps and uncovered tails") {
    CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"U8","shape":[6],"data_offsets":[0,6]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", d8),
                      Contains("tensors 'a' (data_offsets [0, 6]) and 'b' (data_offsets [4, 8]) overlap"));
    CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", d8),
                      Contains("overlap"));
    CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})", d8),
                      Contains("bytes [4, 6) of the data section belong to no tensor"));
    CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", d8), Contains("bytes [0, 4)"));
    CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", d8), Contains("bytes [4, 8) at the end"));
    // Zero-sized tensors may sit at a boundary, but not inside another tensor.
    CHECK_NOTHROW(parse(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]}})", d8));
    CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})", d8),
                      Contains("overlap"));
  }
  SECTION("invalid metadata and BOOL values") {
    CHECK_THROWS_WITH(parse(R"({"__metadata__":{"k":1}})", ""), Contains("metadata \"k\" must be a string"));
    CHECK_THROWS_WITH(parse(R"({"__metadata__":["k"]})", ""), Contains("\"__metadata__\" must be an object"));
    CHECK_THROWS_WITH(parse(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", std::string("\x01\x00\x02", 3)),
                      Contains("tensor 'm': BOOL element 2 has byte value 2"));
  }
}

TEST_CASE("write_safetensors rejects what the format cannot hold", "[safetensors]") {
  test::TempDir dir("st-wbad");
  const std::string path = dir.file("w.safetensors");
  CHECK_THROWS_WITH(write_safetensors(path, {{"__metadata__", at::zeros({1})}}, {}), Contains("__metadata__"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"c", at::zeros({2}, at::kComplexFloat)}}, {}),
                    Contains(path) && Contains("tensor 'c'") && Contains("do not support"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"u", at::Tensor()}}, {}), Contains("undefined"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"a", at::zeros({1})}}, {{"bad\xff", "v"}}), Contains("UTF-8"));
  CHECK_FALSE(file_exists(path));
}
