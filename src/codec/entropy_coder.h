// Entropy coding of quantizer indices. An "item" (one embedding) is a fixed
// number of "slots"; slot s holds an integer in [0, K_s). An EntropyModel holds
// smoothed integer symbol counts fitted on training indices; the coders
// (raw, canonical Huffman, static rANS) derive their tables from those counts
// with integer arithmetic only, so encoder and decoder agree bit-exactly on
// every machine and compiler. Each item is coded as an independent,
// byte-aligned payload (the unit a device sends).
//
// Pure C++17 + the standard library + fmt (no LibTorch): edge devices and the
// fuzzer build this layer on its own.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace semcodec {

// How slots share frequency tables. For per_subspace / per_position the slots
// are laid out as slot = position * subspaces + subspace.
enum class TableMode : int32_t { shared = 0, per_subspace = 1, per_position = 2, per_slot = 3 };
const char* table_mode_name(TableMode m);
TableMode parse_table_mode(const std::string& name);  // throws Error on unknown names

// Coder identifiers as written in bitstreams (stable; never renumber).
enum class CoderId : uint8_t { raw = 0, huffman = 1, rans = 2 };
const char* coder_name(CoderId id);
CoderId parse_coder_id(const std::string& name);      // "raw" | "huffman" | "rans"
bool is_known_coder_id(int value);

constexpr int64_t kMaxAlphabetSize = 65536;
constexpr int64_t kMaxSlots = int64_t(1) << 20;
// Counts are scaled down at fit time so that every table's total stays <= 2^40
// (keeps the integer table derivations inside uint64 arithmetic).
constexpr uint64_t kMaxTableTotal = uint64_t(1) << 40;

class EntropyModel {
 public:
  EntropyModel() = default;

  // Fits counts on `items` x `slots` training indices (row-major, item-major).
  // alphabet_sizes: one entry (all slots) or `slots` entries, each in [1, 65536].
  // Slots that share a table must have the same alphabet size.
  // Smoothing: count = observed + smoothing (>= 1), so every symbol of every
  // alphabet stays encodable. Training indices out of range throw Error.
  static EntropyModel fit(const int32_t* indices, int64_t items, int64_t slots,
                          const std::vector<int64_t>& alphabet_sizes, TableMode mode,
                          int64_t positions = 0, int64_t subspaces = 0, int64_t smoothing = 1);
  // A model with all counts equal (no training data).
  static EntropyModel uniform(int64_t slots, const std::vector<int64_t>& alphabet_sizes,
                              TableMode mode = TableMode::per_slot, int64_t positions = 0,
                              int64_t subspaces = 0);
  // Builds from explicit counts (one vector per table, each count >= 1); validates.
  static EntropyModel from_counts(int64_t slots, const std::vector<int64_t>& alphabet_sizes,
                                  TableMode mode, int64_t positions, int64_t subspaces,
                                  std::vector<std::vector<uint64_t>> counts);

  bool empty() const { return slots_ == 0; }
  int64_t slots() const { return slots_; }
  TableMode mode() const { return mode_; }
  int64_t positions() const { return positions_; }
  int64_t subspaces() const { return subspaces_; }
  int64_t num_tables() const { return static_cast<int64_t>(counts_.size()); }
  int64_t table_of(int64_t slot) const { return table_of_[static_cast<size_t>(slot)]; }
  int64_t alphabet_size(int64_t slot) const { return alphabet_[static_cast<size_t>(slot)]; }
  const std::vector<int64_t>& alphabet_sizes() const { return alphabet_; }
  const std::vector<uint64_t>& counts(int64_t table) const { return counts_[static_cast<size_t>(table)]; }

  // Flat form for checkpoints (layout in docs/bitstream.md, "Model tables"):
  // [magic 0x53434D31, version 1, mode, slots, positions, subspaces, num_tables,
  //  K per slot (slots entries), then per table: K_t, K_t counts].
  std::vector<int64_t> serialize() const;
  // Validates everything (untrusted input); throws Error.
  static EntropyModel deserialize(const std::vector<int64_t>& flat);
  static EntropyModel deserialize(const int64_t* flat, size_t n);
  // Same numbers as little-endian int64 bytes.
  std::vector<uint8_t> to_bytes() const;
  static EntropyModel from_bytes(const uint8_t* data, size_t size);
  // SHA-256 of to_bytes() (hex), e.g. to mix into a checkpoint fingerprint.
  std::string fingerprint_hex() const;

  bool operator==(const EntropyModel& o) const;
  bool operator!=(const EntropyModel& o) const { return !(*this == o); }

 private:
  void build_table_map();  // validates mode/positions/subspaces/alphabets, fills table_of_
  void validate_counts() const;
  int64_t slots_ = 0, positions_ = 0, subspaces_ = 0;
  TableMode mode_ = TableMode::per_slot;
  std::vector<int64_t> alphabet_;   // per slot
  std::vector<int64_t> table_of_;   // per slot
  std::vector<std::vector<uint64_t>> counts_;  // per table, K_t entries, each >= 1
};

// One item in, one byte-aligned payload out, and back. Implementations are
// immutable after construction (thread-safe for concurrent encode/decode).
class EntropyCoder {
 public:
  virtual ~EntropyCoder() = default;
  virtual CoderId id() const = 0;
  virtual int64_t slots() const = 0;
  virtual int64_t alphabet_size(int64_t slot) const = 0;
  // Appends the payload of one item (idx has slots() entries, each in
  // [0, K_s); otherwise throws Error) to `out`.
  virtual void encode_item(const int32_t* idx, std::vector<uint8_t>& out) const = 0;
  // Decodes one payload that must hold exactly one item: throws Error when the
  // data is truncated, has bytes/bits left over or is otherwise inconsistent.
  // Writes slots() indices, each in range, to idx.
  virtual void decode_item(const uint8_t* data, size_t size, int32_t* idx) const = 0;

  std::vector<uint8_t> encode_item(const int32_t* idx) const {
    std::vector<uint8_t> out;
    encode_item(idx, out);
    return out;
  }
  std::vector<int32_t> decode_item(const std::vector<uint8_t>& payload) const {
    std::vector<int32_t> idx(static_cast<size_t>(slots()));
    decode_item(payload.data(), payload.size(), idx.data());
    return idx;
  }
};

// Fixed ceil(log2 K_s) bits per slot, MSB first, zero-padded to a byte
// (K_s = 1 costs 0 bits). The reference and fallback coder.
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

// Builds the coder `id` from a model (raw ignores the counts).
std::unique_ptr<EntropyCoder> make_coder(CoderId id, const EntropyModel& model);

// ceil(log2 k) for k >= 1 (0 for k = 1).
int ceil_log2(uint64_t k);

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
}  // namespace semcodec
