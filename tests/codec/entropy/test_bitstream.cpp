// Bitstream container and packets: round trips, validation of every field,
// corruption robustness, and decoding in a separate process.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <unistd.h>
#include <memory>
#include <string>

#include "codec/entropy/bitstream.h"
#include "codec/entropy/huffman_coder.h"
#include "codec/entropy/rans_coder.h"
#include "codec/entropy/raw_coder.h"
#include "codec_test_util.h"
#include "test_support.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::Dist;
using semcodec::test::gen_indices;

namespace {

Fingerprint make_fp(uint8_t base) {
  Fingerprint f{};
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<uint8_t>(base + i * 7);
  return f;
}

// A deterministic model and data set, rebuilt identically by the child process.
struct Fixture {
  std::vector<int64_t> k = {2, 3, 16, 64, 1024, 65536, 1, 16, 16, 4};
  int64_t slots = 10;
  EntropyModel model;
  std::vector<int32_t> items;
  int64_t n = 25;
  Fixture() {
    auto train = gen_indices(400, k, Dist::zipf, 11);
    model = EntropyModel::fit(train.data(), 400, slots, k, TableMode::per_slot);
    items = gen_indices(n, k, Dist::zipf, 12);
    items[5] = 65535;  // likely unseen in training
  }
};

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}
void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace

TEST_CASE("varints round trip and reject malformed encodings", "[codec][bitstream]") {
  for (uint64_t v : {uint64_t(0), uint64_t(1), uint64_t(127), uint64_t(128), uint64_t(300), uint64_t(1) << 35,
                     uint64_t(1) << 62}) {
    std::vector<uint8_t> b;
    put_varint(b, v);
    size_t pos = 0;
    CHECK(get_varint(b.data(), b.size(), &pos, "x") == v);
    CHECK(pos == b.size());
    for (size_t n = 0; n < b.size(); ++n) {
      size_t p = 0;
      CHECK_THROWS_AS(get_varint(b.data(), n, &p, "x"), Error);
    }
  }
  std::vector<uint8_t> nonmin = {0x80, 0x00};
  size_t pos = 0;
  CHECK_THROWS_WITH(get_varint(nonmin.data(), nonmin.size(), &pos, "x"), Catch::Contains("non-minimal"));
  std::vector<uint8_t> huge(12, 0xFF);
  pos = 0;
  CHECK_THROWS_AS(get_varint(huge.data(), huge.size(), &pos, "x"), Error);
}

TEST_CASE("streams and packets round trip with every coder", "[codec][bitstream]") {
  Fixture fx;
  Fingerprint fp = make_fp(3);
  for (CoderId id : {CoderId::raw, CoderId::huffman, CoderId::rans}) {
    auto c = make_coder(id, fx.model);
    INFO(coder_name(id));
    for (int64_t n : {int64_t(0), int64_t(1), fx.n}) {
      auto stream = encode_stream(*c, fp, fx.items.data(), n);
      DecodedStream d = decode_stream(stream.data(), stream.size(), *c, fp);
      CHECK(d.header.items == n);
      CHECK(d.header.slots == fx.slots);
      CHECK(d.header.coder == id);
      CHECK(d.indices == std::vector<int32_t>(fx.items.begin(), fx.items.begin() + n * fx.slots));
      // The model overload builds the coder the stream names.
      CHECK(decode_stream(stream.data(), stream.size(), fx.model, fp).indices == d.indices);
    }
    for (int64_t i = 0; i < fx.n; ++i) {
      const int32_t* item = fx.items.data() + i * fx.slots;
      auto pkt = encode_packet(*c, fp, item);
      CHECK(pkt.size() == kPacketHeader + c->encode_item(item).size());
      CHECK(packet_coder(pkt.data(), pkt.size()) == id);
      CHECK(decode_packet(pkt, *c, fp) == std::vector<int32_t>(item, item + fx.slots));
    }
  }
}

TEST_CASE("stream reader rejects every malformed header with a clear error", "[codec][bitstream]") {
  Fixture fx;
  Fingerprint fp = make_fp(3);
  HuffmanCoder h(fx.model);
  RansCoder r(fx.model);
  auto good = encode_stream(h, fp, fx.items.data(), 3);
  auto expect_error = [&](std::vector<uint8_t> b, const std::string& text) {
    INFO("expecting: " << text);
    CHECK_THROWS_WITH(decode_stream(b.data(), b.size(), h, fp), Catch::Contains(text));
  };
  auto b = good;
  b[0] = 'X';
  expect_error(b, "bad magic");
  b = good;
  b[4] = 2;
  expect_error(b, "version 2 is not supported");
  b = good;
  b[5] = 9;
  expect_error(b, "unknown coder id 9");
  b = good;
  b[6] = 2;  // bit 0 is the adaptive-stream flag; bit 1 means nothing yet
  expect_error(b, "unknown flags 0x0002");
  b = good;
  b[7] = 0x80;
  expect_error(b, "unknown flags 0x8000");
  b = good;
  b[6] = 1;  // an adaptive stream must use rANS (this one is Huffman)
  expect_error(b, "must be coded with rans");
  b = good;
  b[8 + 5] ^= 1;
  expect_error(b, "made with another checkpoint");
  CHECK_NOTHROW(decode_stream(good.data(), good.size(), h, fp));
  CHECK_THROWS_WITH(decode_stream(good.data(), good.size(), r, fp), Catch::Contains("coded with huffman"));
  CHECK_THROWS_WITH(decode_stream(good.data(), good.size(), h, make_fp(4)), Catch::Contains("another checkpoint"));
  // Trailing garbage.
  b = good;
  b.push_back(0);
  expect_error(b, "trailing garbage");
  // Absurd item count: rewrite the header with 2^40 items.
  b.assign(good.begin(), good.begin() + kStreamFixedHeader);
  put_varint(b, uint64_t(1) << 40);
  put_varint(b, static_cast<uint64_t>(fx.slots));
  expect_error(b, "impossible");
  // Wrong slot count.
  b.assign(good.begin(), good.begin() + kStreamFixedHeader);
  put_varint(b, 0);
  put_varint(b, 11);
  expect_error(b, "slots per item");
  b.assign(good.begin(), good.begin() + kStreamFixedHeader);
  put_varint(b, 0);
  put_varint(b, 0);
  expect_error(b, "slot count 0");
  // Payload length past the end.
  b.assign(good.begin(), good.begin() + kStreamFixedHeader);
  put_varint(b, 1);
  put_varint(b, static_cast<uint64_t>(fx.slots));
  put_varint(b, 1000);
  b.push_back(0);
  expect_error(b, "claims 1000 payload bytes");
  // A payload with an extra byte (more bytes than its bits need).
  auto payload = h.encode_item(fx.items.data());
  payload.push_back(0);
  b.assign(good.begin(), good.begin() + kStreamFixedHeader);
  put_varint(b, 1);
  put_varint(b, static_cast<uint64_t>(fx.slots));
  put_varint(b, payload.size());
  b.insert(b.end(), payload.begin(), payload.end());
  expect_error(b, "unused trailing bits");
  // And one byte short.
  payload.resize(payload.size() - 2);
  b.assign(good.begin(), good.begin() + kStreamFixedHeader);
  put_varint(b, 1);
  put_varint(b, static_cast<uint64_t>(fx.slots));
  put_varint(b, payload.size());
  b.insert(b.end(), payload.begin(), payload.end());
  expect_error(b, "truncated");
  // Too short for a header.
  CHECK_THROWS_WITH(decode_stream(good.data(), 10, h, fp), Catch::Contains("truncated"));
  CHECK_THROWS_AS(decode_stream(nullptr, 0, h, fp), Error);
}

TEST_CASE("a writer with a fallback keeps whichever body is smaller, per stream", "[codec][bitstream]") {
  // One shared table, K = 8: symbol 0 is common, 1..7 rare. Huffman codes 0 in 1 bit
  // and 1..7 in 3-4 bits (one of them 3), so the item {1,2,3,4,5,6,7,1} costs 30-32
  // bits = 4 bytes against raw's 8 x 3 = 24 bits = 3 bytes; {0 x 8} costs 1 byte against 3.
  const int64_t slots = 8;
  EntropyModel tables = EntropyModel::from_counts(slots, {8}, TableMode::shared, 0, 0, {{1000, 1, 1, 1, 1, 1, 1, 1}});
  HuffmanCoder huffman(tables);
  RawCoder raw(tables);
  const Fingerprint fp = make_fp(5);
  const std::vector<int32_t> rare = {1, 2, 3, 4, 5, 6, 7, 1}, common(8, 0);
  REQUIRE(huffman.encode_item(rare.data()).size() == 4);
  REQUIRE(huffman.encode_item(common.data()).size() == 1);
  REQUIRE(raw.encode_item(rare.data()).size() == 3);
  auto items = [&](int n_rare, int n_common) {
    std::vector<int32_t> v;
    for (int i = 0; i < n_rare; ++i) v.insert(v.end(), rare.begin(), rare.end());
    for (int i = 0; i < n_common; ++i) v.insert(v.end(), common.begin(), common.end());
    return v;
  };
  // 6 rare + 1 common: Huffman body 6 x (1 + 4) + (1 + 1) = 32 bytes, raw 7 x (1 + 3) = 28: raw.
  // 3 rare + 5 common: Huffman 3 x 5 + 5 x 2 = 25, raw 8 x 4 = 32: Huffman. Header: 40 + 1 + 1.
  struct Case {
    int n_rare, n_common;
    CoderId coder;
    size_t bytes;
  };
  for (const Case& c : {Case{6, 1, CoderId::raw, 42 + 28}, Case{3, 5, CoderId::huffman, 42 + 25},
                        Case{0, 0, CoderId::huffman, 42}}) {
    INFO(c.n_rare << " rare, " << c.n_common << " common");
    const std::vector<int32_t> idx = items(c.n_rare, c.n_common);
    const int64_t n = c.n_rare + c.n_common;
    StreamWriter w(huffman, fp, &raw);
    w.add_items(idx.data(), n);
    CHECK(w.coder_id() == c.coder);
    const std::vector<uint8_t> stream = w.finish();
    CHECK(stream.size() == c.bytes);
    CHECK(stream[5] == static_cast<uint8_t>(c.coder));
    CHECK(stream == encode_stream(huffman, fp, idx.data(), n, &raw));
    const EntropyCoder& written = c.coder == CoderId::raw ? static_cast<const EntropyCoder&>(raw) : huffman;
    const EntropyCoder& other = c.coder == CoderId::raw ? static_cast<const EntropyCoder&>(huffman) : raw;
    CHECK(decode_stream(stream.data(), stream.size(), written, fp).indices == idx);
    if (n > 0) CHECK_THROWS_WITH(decode_stream(stream.data(), stream.size(), other, fp), Catch::Contains("coded with"));
  }
  // Without a fallback the writer keeps its coder, whatever it costs.
  const std::vector<int32_t> idx = items(6, 1);
  CHECK(encode_stream(huffman, fp, idx.data(), 7).size() == 42 + 32);
}

TEST_CASE("packet reader validates version, coder and fingerprint", "[codec][bitstream]") {
  Fixture fx;
  Fingerprint fp = make_fp(3);
  RansCoder r(fx.model);
  HuffmanCoder h(fx.model);
  auto pkt = encode_packet(r, fp, fx.items.data());
  auto b = pkt;
  b[0] = static_cast<uint8_t>(2 << 4 | 2);
  CHECK_THROWS_WITH(decode_packet(b, r, fp), Catch::Contains("version 2"));
  b = pkt;
  b[0] = static_cast<uint8_t>(1 << 4 | 7);
  CHECK_THROWS_WITH(decode_packet(b, r, fp), Catch::Contains("unknown coder id 7"));
  CHECK_THROWS_WITH(decode_packet(pkt, h, fp), Catch::Contains("coded with rans"));
  CHECK_THROWS_WITH(decode_packet(pkt, r, make_fp(9)), Catch::Contains("another checkpoint"));
  b = pkt;
  b.push_back(0);
  CHECK_THROWS_WITH(decode_packet(b, r, fp), Catch::Contains("trailing"));
  for (size_t n = 0; n < pkt.size(); ++n) {
    std::vector<uint8_t> t(pkt.begin(), pkt.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK_THROWS_AS(decode_packet(t, r, fp), Error);
  }
}

TEST_CASE("corrupted streams fail cleanly or decode to valid indices", "[codec][bitstream][corruption]") {
  Fixture fx;
  Fingerprint fp = make_fp(3);
  for (CoderId id : {CoderId::raw, CoderId::huffman, CoderId::rans}) {
    auto c = make_coder(id, fx.model);
    auto stream = encode_stream(*c, fp, fx.items.data(), 6);
    INFO(coder_name(id) << " stream of " << stream.size() << " bytes");
    // Every truncation is detected (a stream never has an optional tail).
    for (size_t n = 0; n < stream.size(); ++n) {
      INFO("truncated to " << n);
      CHECK_THROWS_AS(decode_stream(stream.data(), n, *c, fp), Error);
    }
    // Every single-bit flip: a clean Error, or in-range indices.
    int64_t detected = 0, decoded = 0;
    for (size_t byte = 0; byte < stream.size(); ++byte)
      for (int bit = 0; bit < 8; ++bit) {
        auto b = stream;
        b[byte] ^= static_cast<uint8_t>(1u << bit);
        try {
          DecodedStream d = decode_stream(b.data(), b.size(), *c, fp);
          ++decoded;
          REQUIRE(static_cast<int64_t>(d.indices.size()) == d.header.items * fx.slots);
          for (size_t i = 0; i < d.indices.size(); ++i) {
            int64_t k = fx.k[i % static_cast<size_t>(fx.slots)];
            REQUIRE(d.indices[i] >= 0);
            REQUIRE(d.indices[i] < k);
          }
        } catch (const Error&) {
          ++detected;
        }
      }
    INFO("bit flips: " << detected << " detected, " << decoded << " decoded");
    CHECK(detected > 0);
    // Bare payloads: truncations and bit flips of one item.
    auto payload = c->encode_item(fx.items.data());
    std::vector<int32_t> out(static_cast<size_t>(fx.slots));
    for (size_t n = 0; n < payload.size(); ++n) {
      try {
        c->decode_item(payload.data(), n, out.data());
        for (int64_t s = 0; s < fx.slots; ++s) REQUIRE((out[static_cast<size_t>(s)] >= 0 && out[static_cast<size_t>(s)] < fx.k[static_cast<size_t>(s)]));
      } catch (const Error&) {
      }
    }
  }
}

TEST_CASE("random garbage never crashes the readers", "[codec][bitstream][corruption]") {
  Fixture fx;
  Fingerprint fp = make_fp(3);
  std::mt19937_64 rng(99);
  std::vector<std::unique_ptr<EntropyCoder>> coders;
  for (CoderId id : {CoderId::raw, CoderId::huffman, CoderId::rans}) coders.push_back(make_coder(id, fx.model));
  auto valid = encode_stream(*coders[2], fp, fx.items.data(), 4);
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> b;
    if (trial % 2) {
      b = valid;  // keep the header, scramble some bytes
      for (int j = 0; j < 3; ++j) b[rng() % b.size()] = static_cast<uint8_t>(rng());
      if (trial % 3 == 0) b.resize(rng() % b.size());
    } else {
      b.resize(rng() % 64);
      for (auto& x : b) x = static_cast<uint8_t>(rng());
    }
    std::vector<int32_t> out(static_cast<size_t>(fx.slots));
    for (auto& c : coders) {
      try {
        decode_stream(b.data(), b.size(), *c, fp);
      } catch (const Error&) {
      }
      try {
        c->decode_item(b.data(), b.size(), out.data());
      } catch (const Error&) {
      }
      try {
        decode_packet(b.data(), b.size(), *c, fp, out.data());
      } catch (const Error&) {
      }
    }
  }
  SUCCEED();
}

// ---- cross-process: the parent writes streams, a child process (this same
// binary, run with a hidden test's tag) decodes them and writes the indices
// and its own re-encoding back; the parent compares bit-exactly.

TEST_CASE("cross-process child decoder", "[.codec_crossproc_child]") {
  const char* in = std::getenv("SEMCODEC_CODEC_CHILD_DIR");
  REQUIRE(in != nullptr);
  std::string dir = in;
  Fixture fx;
  Fingerprint fp = make_fp(3);
  for (std::string name : {"raw", "huffman", "rans"}) {
    auto stream = read_bytes(dir + "/" + name + ".scb");
    DecodedStream d = decode_stream(stream.data(), stream.size(), fx.model, fp);
    std::vector<uint8_t> idx_bytes(d.indices.size() * 4);
    for (size_t i = 0; i < d.indices.size(); ++i)
      for (int j = 0; j < 4; ++j) idx_bytes[i * 4 + static_cast<size_t>(j)] = static_cast<uint8_t>(static_cast<uint32_t>(d.indices[i]) >> (8 * j));
    write_bytes(dir + "/" + name + ".idx", idx_bytes);
    auto c = make_coder(d.header.coder, fx.model);
    write_bytes(dir + "/" + name + ".again", encode_stream(*c, fp, d.indices.data(), d.header.items));
  }
}

TEST_CASE("a stream written here decodes bit-exactly in another process", "[codec][bitstream][crossproc]") {
  semcodec::test::TempDir tmp("codec-crossproc");
  Fixture fx;
  Fingerprint fp = make_fp(3);
  std::map<std::string, std::vector<uint8_t>> streams;
  for (std::string name : {"raw", "huffman", "rans"}) {
    auto c = make_coder(parse_coder_id(name), fx.model);
    streams[name] = encode_stream(*c, fp, fx.items.data(), fx.n);
    write_bytes(tmp.file(name + ".scb"), streams[name]);
  }
  char exe[4096];
  ssize_t len = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  REQUIRE(len > 0);
  exe[len] = 0;
  std::string cmd = "SEMCODEC_CODEC_CHILD_DIR='" + tmp.path() + "' '" + std::string(exe) +
                    "' '[.codec_crossproc_child]' > '" + tmp.file("child.log") + "' 2>&1";
  int rc = std::system(cmd.c_str());
  auto log = read_bytes(tmp.file("child.log"));
  INFO("child output:\n" << std::string(log.begin(), log.end()));
  REQUIRE(rc == 0);
  for (std::string name : {"raw", "huffman", "rans"}) {
    auto idx = read_bytes(tmp.file(name + ".idx"));
    REQUIRE(idx.size() == fx.items.size() * 4);
    std::vector<int32_t> got(fx.items.size());
    for (size_t i = 0; i < got.size(); ++i) {
      uint32_t v = 0;
      for (int j = 3; j >= 0; --j) v = (v << 8) | idx[i * 4 + static_cast<size_t>(j)];
      got[i] = static_cast<int32_t>(v);
    }
    CHECK(got == fx.items);
    CHECK(read_bytes(tmp.file(name + ".again")) == streams[name]);
  }
}
