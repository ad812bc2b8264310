#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "util/hash.h"

using namespace semcodec;

TEST_CASE("sha256 matches the FIPS 180-4 test vectors", "[hash]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu") ==
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST_CASE("sha256 of one million 'a' fed in odd-sized pieces", "[hash]") {
  const std::string expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  const std::string a(1000000, 'a');
  CHECK(sha256_hex(a) == expected);

  Sha256 h;
  size_t pos = 0, piece = 1;
  while (pos < a.size()) {
    size_t n = std::min(piece, a.size() - pos);
    h.update(a.data() + pos, n);
    pos += n;
    piece = (piece * 7 + 3) % 211;  // 1, 10, 73, 92, ... including 0-sized pieces
  }
  auto d = h.digest();
  CHECK(to_hex(d.data(), d.size()) == expected);
}

TEST_CASE("sha256 padding boundaries agree between one-shot and byte-wise", "[hash]") {
  // Lengths around the 55/56/64-byte padding edges, checked against
  // independently computed values (sha256sum).
  CHECK(sha256_hex(std::string(55, 'a')) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  CHECK(sha256_hex(std::string(56, 'a')) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  CHECK(sha256_hex(std::string(64, 'a')) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  for (size_t len = 0; len < 200; ++len) {
    std::string s;
    for (size_t i = 0; i < len; ++i) s.push_back(char('a' + i % 26));
    Sha256 h;
    for (char c : s) h.update(&c, 1);
    auto d = h.digest();
    CHECK(to_hex(d.data(), d.size()) == sha256_hex(s));
  }
}

TEST_CASE("sha256 digest resets the state", "[hash]") {
  Sha256 h;
  h.update("abc");
  h.digest();
  h.update(std::string_view("abc"));
  auto d = h.digest();
  CHECK(to_hex(d.data(), d.size()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("to_hex and fnv1a64", "[hash]") {
  const uint8_t bytes[] = {0x00, 0x0f, 0xa5, 0xff};
  CHECK(to_hex(bytes, 4) == "000fa5ff");
  CHECK(to_hex(bytes, 0).empty());
  CHECK(fnv1a64("") == 0xcbf29ce484222325ULL);
  CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(fnv1a64("foobar") == 0x85944171f73967e8ULL);
}
