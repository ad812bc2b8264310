#include "codec/entropy/entropy_model.h"

#include <algorithm>

#include "util/error.h"
#include "util/hash.h"

namespace semcodec {

namespace {
constexpr int64_t kModelMagic = 0x53434D31;  // "SCM1"
constexpr int64_t kModelVersion = 1;
constexpr size_t kModelHeader = 7;
}  // namespace

const char* table_mode_name(TableMode m) {
  switch (m) {
    case TableMode::shared: return "shared";
    case TableMode::per_subspace: return "per_subspace";
    case TableMode::per_position: return "per_position";
    case TableMode::per_slot: return "per_slot";
  }
  return "?";
}

TableMode parse_table_mode(const std::string& name) {
  if (name == "shared") return TableMode::shared;
  if (name == "per_subspace") return TableMode::per_subspace;
  if (name == "per_position") return TableMode::per_position;
  if (name == "per_slot") return TableMode::per_slot;
  fail("unknown entropy table mode '{}' (expected shared | per_subspace | per_position | per_slot)", name);
}

void EntropyModel::build_table_map() {
  require(slots_ >= 1 && slots_ <= kMaxSlots, "entropy model: slots {} out of range [1, {}]", slots_, kMaxSlots);
  require(static_cast<int64_t>(alphabet_.size()) == slots_, "entropy model: {} alphabet sizes for {} slots",
          alphabet_.size(), slots_);
  for (int64_t s = 0; s < slots_; ++s) {
    int64_t k = alphabet_[static_cast<size_t>(s)];
    require(k >= 1 && k <= kMaxAlphabetSize, "entropy model: alphabet size {} of slot {} out of range [1, {}]", k, s,
            kMaxAlphabetSize);
  }
  int64_t tables = 0;
  switch (mode_) {
    case TableMode::shared:
    case TableMode::per_slot:
      if (positions_ != 0 || subspaces_ != 0) {
        require(positions_ >= 1 && subspaces_ >= 1 && positions_ <= kMaxSlots && subspaces_ <= kMaxSlots &&
                    positions_ * subspaces_ == slots_,
                "entropy model: positions {} x subspaces {} != slots {}", positions_, subspaces_, slots_);
      }
      tables = mode_ == TableMode::shared ? 1 : slots_;
      break;
    case TableMode::per_subspace:
    case TableMode::per_position:
      require(positions_ >= 1 && subspaces_ >= 1 && positions_ <= kMaxSlots && subspaces_ <= kMaxSlots &&
                  positions_ * subspaces_ == slots_,
              "entropy model: table mode {} needs positions x subspaces == slots (got {} x {} for {} slots)",
              table_mode_name(mode_), positions_, subspaces_, slots_);
      tables = mode_ == TableMode::per_subspace ? subspaces_ : positions_;
      break;
    default:
      fail("entropy model: unknown table mode {}", static_cast<int>(mode_));
  }
  table_of_.assign(static_cast<size_t>(slots_), 0);
  std::vector<int64_t> table_k(static_cast<size_t>(tables), -1);
  for (int64_t s = 0; s < slots_; ++s) {
    int64_t t = 0;
    switch (mode_) {
      case TableMode::shared: t = 0; break;
      case TableMode::per_slot: t = s; break;
      case TableMode::per_subspace: t = s % subspaces_; break;
      case TableMode::per_position: t = s / subspaces_; break;
    }
    table_of_[static_cast<size_t>(s)] = t;
    int64_t k = alphabet_[static_cast<size_t>(s)];
    int64_t& tk = table_k[static_cast<size_t>(t)];
    require(tk < 0 || tk == k, "entropy model: slots sharing table {} ({} mode) have different alphabet sizes {} and {}",
            t, table_mode_name(mode_), tk, k);
    tk = k;
  }
}

void EntropyModel::validate_counts() const {
  int64_t tables = 0;
  for (int64_t t : table_of_) tables = std::max(tables, t + 1);
  require(static_cast<int64_t>(counts_.size()) == tables, "entropy model: {} count tables, expected {}",
          counts_.size(), tables);
  std::vector<int64_t> table_k(static_cast<size_t>(tables), 0);
  for (int64_t s = 0; s < slots_; ++s) table_k[static_cast<size_t>(table_of_[static_cast<size_t>(s)])] = alphabet_[static_cast<size_t>(s)];
  for (size_t t = 0; t < counts_.size(); ++t) {
    require(static_cast<int64_t>(counts_[t].size()) == table_k[t], "entropy model: table {} has {} counts, expected {}",
            t, counts_[t].size(), table_k[t]);
    uint64_t total = 0;
    for (size_t i = 0; i < counts_[t].size(); ++i) {
      uint64_t c = counts_[t][i];
      require(c >= 1 && c <= kMaxTableTotal, "entropy model: table {} symbol {} has count {} (must be in [1, 2^40])", t,
              i, c);
      total += c;
      require(total <= kMaxTableTotal, "entropy model: table {} counts sum above 2^40", t);
    }
  }
}

EntropyModel EntropyModel::from_counts(int64_t slots, const std::vector<int64_t>& alphabet_sizes, TableMode mode,
                                       int64_t positions, int64_t subspaces,
                                       std::vector<std::vector<uint64_t>> counts) {
  EntropyModel m;
  m.slots_ = slots;
  m.mode_ = mode;
  m.positions_ = positions;
  m.subspaces_ = subspaces;
  if (alphabet_sizes.size() == 1 && slots >= 1 && slots <= kMaxSlots)
    m.alphabet_.assign(static_cast<size_t>(slots), alphabet_sizes[0]);
  else
    m.alphabet_ = alphabet_sizes;
  m.build_table_map();
  m.counts_ = std::move(counts);
  m.validate_counts();
  return m;
}

EntropyModel EntropyModel::fit(const int32_t* indices, int64_t items, int64_t slots,
                               const std::vector<int64_t>& alphabet_sizes, TableMode mode, int64_t positions,
                               int64_t subspaces, int64_t smoothing) {
  require(items >= 0, "entropy model fit: negative item count {}", items);
  require(smoothing >= 1 && smoothing <= (int64_t(1) << 20), "entropy model fit: smoothing {} out of range [1, 2^20]",
          smoothing);
  require(items == 0 || indices != nullptr, "entropy model fit: null indices");
  EntropyModel m;
  m.slots_ = slots;
  m.mode_ = mode;
  m.positions_ = positions;
  m.subspaces_ = subspaces;
  if (alphabet_sizes.size() == 1 && slots >= 1 && slots <= kMaxSlots)
    m.alphabet_.assign(static_cast<size_t>(slots), alphabet_sizes[0]);
  else
    m.alphabet_ = alphabet_sizes;
  m.build_table_map();
  int64_t tables = 0;
  for (int64_t t : m.table_of_) tables = std::max(tables, t + 1);
  m.counts_.assign(static_cast<size_t>(tables), {});
  for (int64_t s = 0; s < slots; ++s) {
    auto& c = m.counts_[static_cast<size_t>(m.table_of_[static_cast<size_t>(s)])];
    c.assign(static_cast<size_t>(m.alphabet_[static_cast<size_t>(s)]), 0);
  }
  for (int64_t i = 0; i < items; ++i) {
    const int32_t* row = indices + i * slots;
    for (int64_t s = 0; s < slots; ++s) {
      int32_t v = row[s];
      int64_t k = m.alphabet_[static_cast<size_t>(s)];
      if (v < 0 || v >= k) fail("entropy model fit: item {} slot {} has index {} outside [0, {})", i, s, v, k);
      ++m.counts_[static_cast<size_t>(m.table_of_[static_cast<size_t>(s)])][static_cast<size_t>(v)];
    }
  }
  for (auto& c : m.counts_) {
    // Scale observed counts down (deterministically) until the smoothed total fits 2^40.
    int shift = 0;
    for (;;) {
      uint64_t total = 0;
      for (uint64_t x : c) total += (x >> shift) + static_cast<uint64_t>(smoothing);
      if (total <= kMaxTableTotal) break;
      ++shift;
    }
    for (uint64_t& x : c) x = (x >> shift) + static_cast<uint64_t>(smoothing);
  }
  m.validate_counts();
  return m;
}

EntropyModel EntropyModel::uniform(int64_t slots, const std::vector<int64_t>& alphabet_sizes, TableMode mode,
                                   int64_t positions, int64_t subspaces) {
  return fit(nullptr, 0, slots, alphabet_sizes, mode, positions, subspaces, 1);
}

std::vector<int64_t> EntropyModel::serialize() const {
  require(!empty(), "entropy model: cannot serialize an empty model");
  std::vector<int64_t> f = {kModelMagic, kModelVersion, static_cast<int64_t>(mode_), slots_, positions_, subspaces_,
                            num_tables()};
  f.insert(f.end(), alphabet_.begin(), alphabet_.end());
  for (const auto& c : counts_) {
    f.push_back(static_cast<int64_t>(c.size()));
    for (uint64_t x : c) f.push_back(static_cast<int64_t>(x));
  }
  return f;
}

EntropyModel EntropyModel::deserialize(const std::vector<int64_t>& flat) {
  return deserialize(flat.data(), flat.size());
}

EntropyModel EntropyModel::deserialize(const int64_t* f, size_t n) {
  require(n >= kModelHeader, "entropy model tables: {} values, need at least {} (truncated?)", n, kModelHeader);
  require(f[0] == kModelMagic, "entropy model tables: bad magic {:#x} (expected {:#x})", f[0], kModelMagic);
  require(f[1] == kModelVersion, "entropy model tables: unsupported version {} (this build reads {})", f[1],
          kModelVersion);
  require(f[2] >= 0 && f[2] <= 3, "entropy model tables: unknown table mode {}", f[2]);
  int64_t slots = f[3];
  require(slots >= 1 && slots <= kMaxSlots, "entropy model tables: slots {} out of range [1, {}]", slots, kMaxSlots);
  require(n - kModelHeader >= static_cast<size_t>(slots),
          "entropy model tables: truncated ({} values, {} slots need more)", n, slots);
  EntropyModel m;
  m.mode_ = static_cast<TableMode>(f[2]);
  m.slots_ = slots;
  m.positions_ = f[4];
  m.subspaces_ = f[5];
  m.alphabet_.assign(f + kModelHeader, f + kModelHeader + slots);
  m.build_table_map();
  int64_t tables = 0;
  for (int64_t t : m.table_of_) tables = std::max(tables, t + 1);
  require(f[6] == tables, "entropy model tables: header says {} tables, mode {} implies {}", f[6],
          table_mode_name(m.mode_), tables);
  size_t pos = kModelHeader + static_cast<size_t>(slots);
  m.counts_.resize(static_cast<size_t>(tables));
  for (int64_t t = 0; t < tables; ++t) {
    require(pos < n, "entropy model tables: truncated before table {}", t);
    int64_t k = f[pos++];
    require(k >= 1 && k <= kMaxAlphabetSize, "entropy model tables: table {} size {} out of range", t, k);
    require(n - pos >= static_cast<size_t>(k), "entropy model tables: truncated inside table {}", t);
    auto& c = m.counts_[static_cast<size_t>(t)];
    c.resize(static_cast<size_t>(k));
    for (int64_t i = 0; i < k; ++i) {
      int64_t v = f[pos++];
      require(v >= 1 && static_cast<uint64_t>(v) <= kMaxTableTotal,
              "entropy model tables: table {} symbol {} count {} out of range [1, 2^40]", t, i, v);
      c[static_cast<size_t>(i)] = static_cast<uint64_t>(v);
    }
  }
  require(pos == n, "entropy model tables: {} trailing values", n - pos);
  m.validate_counts();
  return m;
}

std::vector<uint8_t> EntropyModel::to_bytes() const {
  std::vector<int64_t> f = serialize();
  std::vector<uint8_t> b(f.size() * 8);
  for (size_t i = 0; i < f.size(); ++i) {
    uint64_t v = static_cast<uint64_t>(f[i]);
    for (int j = 0; j < 8; ++j) b[i * 8 + static_cast<size_t>(j)] = static_cast<uint8_t>(v >> (8 * j));
  }
  return b;
}

EntropyModel EntropyModel::from_bytes(const uint8_t* data, size_t size) {
  require(size % 8 == 0, "entropy model tables: {} bytes is not a whole number of int64 values", size);
  std::vector<int64_t> f(size / 8);
  for (size_t i = 0; i < f.size(); ++i) {
    uint64_t v = 0;
    for (int j = 7; j >= 0; --j) v = (v << 8) | data[i * 8 + static_cast<size_t>(j)];
    f[i] = static_cast<int64_t>(v);
  }
  return deserialize(f);
}

std::string EntropyModel::fingerprint_hex() const {
  std::vector<uint8_t> b = to_bytes();
  return sha256_hex(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

bool EntropyModel::operator==(const EntropyModel& o) const {
  return slots_ == o.slots_ && positions_ == o.positions_ && subspaces_ == o.subspaces_ && mode_ == o.mode_ &&
         alphabet_ == o.alphabet_ && counts_ == o.counts_;
}

}  // namespace semcodec
