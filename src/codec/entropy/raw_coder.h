// Fixed ceil(log2 K_s) bits per slot, MSB first, zero-padded to a byte
// (K_s = 1 costs 0 bits): the reference and fallback coder, and the raw rate
// every other coder is measured against.
#pragma once
#include <cstdint>
#include <vector>

#include "codec/entropy/entropy_coder.h"

namespace semcodec {

class RawCoder final : public EntropyCoder {
 public:
  explicit RawCoder(std::vector<int64_t> alphabet_sizes);  // one per slot
  explicit RawCoder(const EntropyModel& model) : RawCoder(model.alphabet_sizes()) {}
  CoderId id() const override { return CoderId::raw; }
  int64_t slots() const override { return static_cast<int64_t>(alphabet_.size()); }
  int64_t alphabet_size(int64_t slot) const override { return alphabet_[static_cast<size_t>(slot)]; }
  using EntropyCoder::encode_item;
  using EntropyCoder::decode_item;
  void encode_item(const int32_t* idx, std::vector<uint8_t>& out) const override;
  void decode_item(const uint8_t* data, size_t size, int32_t* idx) const override;
  int64_t item_bits() const { return total_bits_; }

 private:
  std::vector<int64_t> alphabet_;
  std::vector<int> bits_;
  int64_t total_bits_ = 0;
};

}  // namespace semcodec
