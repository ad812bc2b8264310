// Canonical, length-limited Huffman coding of quantizer indices. Code lengths
// come from the model's integer counts (two-queue Huffman; package-merge when
// the plain Huffman code would exceed the length limit), codes are assigned
// canonically, and decoding is table driven (an 11-bit lookup table plus a
// canonical per-length fallback for longer codes).
#pragma once
#include <cstdint>
#include <vector>

#include "codec/entropy/entropy_coder.h"

namespace semcodec {

constexpr int kHuffmanMaxCodeLength = 24;

// Code lengths of an optimal prefix code for `freqs` whose longest code is at
// most max_len bits (1 <= max_len <= 32; needs 2^max_len >= number of nonzero
// freqs). Symbols with frequency 0 get length 0; a single nonzero symbol gets
// length 1. Integer-only and deterministic (ties broken by symbol index).
std::vector<uint8_t> huffman_code_lengths(const std::vector<uint64_t>& freqs,
                                          int max_len = kHuffmanMaxCodeLength);
// Canonical code values (MSB-first, `lengths[i]` bits) for the given lengths:
// codes ordered by (length, symbol). Length 0 gets code 0 (unused).
// Throws Error if the lengths over-subscribe the code space (Kraft sum > 1).
std::vector<uint32_t> canonical_codes(const std::vector<uint8_t>& lengths);

class HuffmanCoder final : public EntropyCoder {
 public:
  explicit HuffmanCoder(const EntropyModel& model, int max_len = kHuffmanMaxCodeLength);
  CoderId id() const override { return CoderId::huffman; }
  int64_t slots() const override { return static_cast<int64_t>(table_of_.size()); }
  int64_t alphabet_size(int64_t slot) const override {
    return tables_[static_cast<size_t>(table_of_[static_cast<size_t>(slot)])].k;
  }
  using EntropyCoder::encode_item;
  using EntropyCoder::decode_item;
  void encode_item(const int32_t* idx, std::vector<uint8_t>& out) const override;
  void decode_item(const uint8_t* data, size_t size, int32_t* idx) const override;

  int64_t num_tables() const { return static_cast<int64_t>(tables_.size()); }
  // Code lengths of table t (K = 1 tables: {0}, the symbol costs no bits).
  const std::vector<uint8_t>& code_lengths(int64_t table) const { return tables_[static_cast<size_t>(table)].len; }
  const std::vector<uint32_t>& codes(int64_t table) const { return tables_[static_cast<size_t>(table)].code; }
  int64_t table_of(int64_t slot) const { return table_of_[static_cast<size_t>(slot)]; }
  // Bits the item costs (without byte padding).
  int64_t item_bits(const int32_t* idx) const;

 private:
  struct Table {
    int64_t k = 0;
    std::vector<uint8_t> len;
    std::vector<uint32_t> code;
    int max_len = 0;      // longest code in this table
    int lut_bits = 0;
    std::vector<uint32_t> lut;  // (symbol << 5) | length, length 0: longer code
    uint32_t first_code[33] = {};
    uint32_t count[33] = {};
    uint32_t first_index[33] = {};
    std::vector<int32_t> sorted;  // symbols in canonical order
  };
  std::vector<Table> tables_;
  std::vector<int64_t> table_of_;
};

}  // namespace semcodec
