// MSB-first bit packing, plus the Golomb-Rice code of signed integers that
// side information uses (docs/bitstream.md, "Adaptive streams").
//
// Rice(r) of a signed v: u = zigzag(v) (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...);
// q = u >> r ones, one zero, then the low r bits of u. A quotient of
// kRiceEscape or more is written as kRiceEscape ones followed by u in 32 bits,
// so no value costs more than kRiceEscape + 32 bits and the reader never runs
// long on hostile input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "util/error.h"

namespace semcodec {

constexpr int kRiceEscape = 24;

inline uint32_t zigzag(int64_t v) { return v >= 0 ? static_cast<uint32_t>(2 * v) : static_cast<uint32_t>(-2 * v - 1); }
inline int64_t unzigzag(uint32_t u) { return (u & 1) ? -static_cast<int64_t>((u + 1) >> 1) : static_cast<int64_t>(u >> 1); }

// Bits Rice(r) spends on v.
inline int64_t rice_bits(int64_t v, int r) {
  const uint32_t q = zigzag(v) >> r;
  return q >= static_cast<uint32_t>(kRiceEscape) ? kRiceEscape + 32 : static_cast<int64_t>(q) + 1 + r;
}

class BitSink {
 public:
  explicit BitSink(std::vector<uint8_t>& out) : out_(out) {}
  // Appends the low n bits of v (n <= 32), most significant first.
  void put(uint32_t v, int n) {
    for (int i = n - 1; i >= 0; --i) put_bit((v >> i) & 1u);
  }
  void put_rice(int64_t v, int r) {
    require(v >= -(int64_t(1) << 31) && v < (int64_t(1) << 31), "rice code: value {} out of range", v);
    const uint32_t u = zigzag(v);
    const uint32_t q = u >> r;
    if (q >= static_cast<uint32_t>(kRiceEscape)) {
      for (int i = 0; i < kRiceEscape; ++i) put_bit(1);
      put(u, 32);
      return;
    }
    for (uint32_t i = 0; i < q; ++i) put_bit(1);
    put_bit(0);
    put(u & ((r == 0) ? 0u : ((uint32_t(1) << r) - 1)), r);
  }
  // Pads with zero bits to a byte boundary.
  void flush() {
    if (n_ > 0) out_.push_back(static_cast<uint8_t>(acc_ << (8 - n_)));
    acc_ = 0;
    n_ = 0;
  }

 private:
  void put_bit(uint32_t b) {
    acc_ = static_cast<uint8_t>((acc_ << 1) | b);
    if (++n_ == 8) {
      out_.push_back(acc_);
      acc_ = 0;
      n_ = 0;
    }
  }
  std::vector<uint8_t>& out_;
  uint8_t acc_ = 0;
  int n_ = 0;
};

// Reads what BitSink wrote. Reading past the end throws Error naming `what`.
class BitSource {
 public:
  BitSource(const uint8_t* data, size_t size, const char* what) : data_(data), size_(size), what_(what) {}
  uint32_t get(int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 1) | get_bit();
    return v;
  }
  int64_t get_rice(int r) {
    uint32_t q = 0;
    while (q < static_cast<uint32_t>(kRiceEscape) && get_bit()) ++q;
    if (q == static_cast<uint32_t>(kRiceEscape)) return unzigzag(get(32));
    const uint32_t low = get(r);
    return unzigzag((q << r) | low);
  }
  // Throws unless only zero padding of the last byte remains.
  void finish() const {
    const uint64_t used_bytes = (pos_ + 7) / 8;
    require(used_bytes == size_, "{}: {} trailing bytes after the last field", what_, size_ - used_bytes);
    for (uint64_t p = pos_; p < used_bytes * 8; ++p)
      require(((data_[p >> 3] >> (7 - (p & 7))) & 1u) == 0, "{}: non-zero padding bits", what_);
  }
  uint64_t bits_left() const { return uint64_t(size_) * 8 - pos_; }

 private:
  uint32_t get_bit() {
    require(pos_ < uint64_t(size_) * 8, "{}: truncated (needs more than its {} bytes)", what_, size_);
    const uint32_t b = (data_[pos_ >> 3] >> (7 - (pos_ & 7))) & 1u;
    ++pos_;
    return b;
  }
  const uint8_t* data_;
  size_t size_;
  const char* what_;
  uint64_t pos_ = 0;
};

}  // namespace semcodec
