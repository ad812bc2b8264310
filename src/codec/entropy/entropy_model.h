// The statistics the entropy coders code with. An "item" (one embedding) is a
// fixed number of "slots"; slot s holds an integer in [0, K_s). An
// EntropyModel holds smoothed integer symbol counts fitted on training
// indices; every coder derives its tables from those counts with integer
// arithmetic only, so encoder and decoder agree bit-exactly on every machine
// and compiler.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace semcodec {

// How slots share frequency tables. For per_subspace / per_position the slots
// are laid out as slot = position * subspaces + subspace.
enum class TableMode : int32_t { shared = 0, per_subspace = 1, per_position = 2, per_slot = 3 };
const char* table_mode_name(TableMode m);
TableMode parse_table_mode(const std::string& name);  // throws Error on unknown names
// Every mode, fewest tables first.
constexpr TableMode kTableModes[] = {TableMode::shared, TableMode::per_subspace, TableMode::per_position,
                                     TableMode::per_slot};

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

}  // namespace semcodec
