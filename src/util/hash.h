// Content hashes: SHA-256 (FIPS 180-4, for file identity and checksums in
// manifests) and FNV-1a 64 (a fast non-cryptographic hash for seeds and keys).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace semcodec {

// Incremental SHA-256. update() may be called any number of times with pieces
// of any size; digest() finalizes and returns the 32-byte hash. After digest()
// the object is reset and can hash a new message.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();

 private:
  void reset();
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_;
  size_t buf_len_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lower-case hex of bytes.
std::string to_hex(const uint8_t* data, size_t n);
// Lower-case hex SHA-256 of data (64 characters).
std::string sha256_hex(std::string_view data);
// 64-bit FNV-1a.
uint64_t fnv1a64(std::string_view data);

}  // namespace semcodec
