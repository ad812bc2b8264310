// MSB-first bit packing for the coders that write whole bits (raw, Huffman),
// and the Golomb-Rice code of signed integers that side information uses
// (docs/bitstream.md, "Adaptive streams").
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace semcodec {

namespace detail {

// MSB-first bit packing into bytes.
class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>& out) : out_(out) {}
  // Appends the low n bits of v (n <= 32), most significant first.
  void put(uint32_t v, int n) {
    acc_ = (acc_ << n) | (n == 0 ? 0 : (uint64_t(v) & ((uint64_t(1) << n) - 1)));
    nacc_ += n;
    while (nacc_ >= 8) {
      nacc_ -= 8;
      out_.push_back(static_cast<uint8_t>(acc_ >> nacc_));
    }
  }
  // Pads with zero bits to a byte boundary.
  void flush() {
    if (nacc_ > 0) out_.push_back(static_cast<uint8_t>(acc_ << (8 - nacc_)));
    nacc_ = 0;
    acc_ = 0;
  }

 private:
  std::vector<uint8_t>& out_;
  uint64_t acc_ = 0;
  int nacc_ = 0;
};

// MSB-first bit reading; bits past the end read as zero but are counted, so
// finish() can tell a truncated payload from a complete one.
class BitReader {
 public:
  BitReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  // The next n bits (n <= 32) without consuming them.
  uint32_t peek(int n) const {
    if (n == 0) return 0;
    uint64_t byte = pos_ >> 3;
    int shift = static_cast<int>(pos_ & 7);
    uint64_t w = 0;
    for (int i = 0; i < 5; ++i) {
      uint64_t b = byte + static_cast<uint64_t>(i);
      w = (w << 8) | (b < size_ ? data_[b] : 0u);
    }
    // w holds 40 bits starting at bit `byte*8`.
    w <<= shift;
    return static_cast<uint32_t>((w >> (40 - n)) & ((uint64_t(1) << n) - 1));
  }
  void skip(int n) { pos_ += static_cast<uint64_t>(n); }
  uint32_t get(int n) {
    uint32_t v = peek(n);
    skip(n);
    return v;
  }
  uint64_t position() const { return pos_; }
  bool overrun() const { return pos_ > uint64_t(size_) * 8; }
  // Throws Error unless exactly the payload's bytes were used and the padding
  // bits of the last byte are zero.
  void finish(const char* coder) const;

 private:
  const uint8_t* data_;
  size_t size_;
  uint64_t pos_ = 0;
};

}  // namespace detail

// Rice(r) of a signed v: u = zigzag(v) (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...);
// q = u >> r ones, one zero, then the low r bits of u. A quotient of
// kRiceEscape or more is written as kRiceEscape ones and u in 32 bits, so no
// value costs more than kRiceEscape + 32 bits and a reader of hostile bits
// never runs long.
constexpr int kRiceEscape = 24;
constexpr int kMaxRiceParameter = 24;
inline uint32_t zigzag(int64_t v) { return v >= 0 ? static_cast<uint32_t>(2 * v) : static_cast<uint32_t>(-2 * v - 1); }
inline int64_t unzigzag(uint32_t u) { return (u & 1) ? -static_cast<int64_t>((u >> 1) + 1) : static_cast<int64_t>(u >> 1); }
// Bits Rice(r) spends on v.
inline int64_t rice_bits(int64_t v, int r) {
  const uint32_t q = zigzag(v) >> r;
  return q >= static_cast<uint32_t>(kRiceEscape) ? kRiceEscape + 32 : static_cast<int64_t>(q) + 1 + r;
}
// v must fit 32 bits once zigzagged (|v| < 2^31); r in [0, kMaxRiceParameter].
void put_rice(detail::BitWriter& w, int64_t v, int r);
// Reads one value; past the end of the data the bits read as zero (check
// BitReader::overrun() or finish() afterwards).
int64_t get_rice(detail::BitReader& rd, int r);

}  // namespace semcodec
