// Static rANS coding of quantizer indices (Duda's range variant of asymmetric
// numeral systems, byte-wise renormalization as in Giesen's rans_byte, with a
// 64-bit state so that large frequency totals stay precise).
//
// Tables: each table's counts are quantized (integer arithmetic only) to
// frequencies summing to 2^scale_bits with every frequency >= 1, where
// scale_bits = clamp(ceil(log2 K) + 8, 16, 24) (K = 65536 -> 2^24).
// State x lives in [2^31, 2^39); each item is an independent message: the
// encoder starts from x = 2^31, codes the slots last to first, then flushes
// the 5-byte final state. The decoder must end with x == 2^31 having consumed
// every byte, which catches most corruption.
#pragma once
#include <cstdint>
#include <vector>

#include "codec/entropy/entropy_coder.h"

namespace semcodec {

constexpr uint64_t kRansL = uint64_t(1) << 31;  // lower bound of the state
constexpr int kRansStateBytes = 5;               // flushed state: x < 2^39

// Scale chosen for an alphabet of k symbols.
int rans_scale_bits(int64_t k);
// Quantized frequencies (sum = 2^scale_bits, each >= 1) from counts (each >= 1,
// sum <= 2^40, 1 <= K <= 2^scale_bits). Deterministic, integer-only.
std::vector<uint32_t> rans_quantize(const std::vector<uint64_t>& counts, int scale_bits);

class RansCoder final : public EntropyCoder {
 public:
  explicit RansCoder(const EntropyModel& model);
  CoderId id() const override { return CoderId::rans; }
  int64_t slots() const override { return static_cast<int64_t>(table_of_.size()); }
  int64_t alphabet_size(int64_t slot) const override {
    return static_cast<int64_t>(tables_[static_cast<size_t>(table_of_[static_cast<size_t>(slot)])].freq.size());
  }
  using EntropyCoder::encode_item;
  using EntropyCoder::decode_item;
  void encode_item(const int32_t* idx, std::vector<uint8_t>& out) const override;
  void decode_item(const uint8_t* data, size_t size, int32_t* idx) const override;
  // Several items as ONE message (one state, flushed once): what adaptive
  // streams carry (docs/bitstream.md). idx holds items x slots, item-major.
  void encode_message(const int32_t* idx, int64_t items, std::vector<uint8_t>& out) const;
  void decode_message(const uint8_t* data, size_t size, int64_t items, int32_t* idx) const;

  int64_t num_tables() const { return static_cast<int64_t>(tables_.size()); }
  int64_t table_of(int64_t slot) const { return table_of_[static_cast<size_t>(slot)]; }
  int scale_bits(int64_t table) const { return tables_[static_cast<size_t>(table)].scale; }
  const std::vector<uint32_t>& freqs(int64_t table) const { return tables_[static_cast<size_t>(table)].freq; }

 private:
  struct Table {
    int scale = 16;
    std::vector<uint32_t> freq;
    std::vector<uint32_t> cum;  // K + 1 entries, cum[K] = 2^scale
  };
  std::vector<Table> tables_;
  std::vector<int64_t> table_of_;
};

}  // namespace semcodec
