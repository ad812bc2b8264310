#include "codec/entropy/huffman_coder.h"

#include <algorithm>
#include <numeric>

#include "codec/entropy/bit_io.h"
#include "codec/entropy/coder_registry.h"
#include "util/error.h"

namespace semcodec {

namespace {

// Package-merge (Larmore & Hirschberg): optimal code lengths <= max_len for
// weights sorted ascending. Returns lengths in the sorted order.
std::vector<uint8_t> package_merge(const std::vector<uint64_t>& w, int max_len) {
  const size_t n = w.size();
  // types[level]: for each item of that level's merged list, true = leaf.
  std::vector<std::vector<bool>> types(static_cast<size_t>(max_len));
  std::vector<uint64_t> prev(w.begin(), w.end());
  types[0].assign(n, true);
  for (int level = 1; level < max_len; ++level) {
    std::vector<uint64_t> packages(prev.size() / 2);
    for (size_t i = 0; i < packages.size(); ++i) packages[i] = prev[2 * i] + prev[2 * i + 1];
    std::vector<uint64_t> merged;
    std::vector<bool>& ty = types[static_cast<size_t>(level)];
    merged.reserve(n + packages.size());
    ty.reserve(n + packages.size());
    size_t a = 0, b = 0;
    while (a < n || b < packages.size()) {
      if (b >= packages.size() || (a < n && w[a] <= packages[b])) {
        merged.push_back(w[a++]);
        ty.push_back(true);
      } else {
        merged.push_back(packages[b++]);
        ty.push_back(false);
      }
    }
    prev.swap(merged);
  }
  std::vector<uint8_t> len(n, 0);
  size_t take = 2 * n - 2;
  for (int level = max_len - 1; level >= 0 && take > 0; --level) {
    const std::vector<bool>& ty = types[static_cast<size_t>(level)];
    size_t leaves = 0;
    for (size_t i = 0; i < take && i < ty.size(); ++i) leaves += ty[i] ? 1 : 0;
    for (size_t i = 0; i < leaves; ++i) ++len[i];
    take = 2 * (take - leaves);
  }
  return len;
}

}  // namespace

std::vector<uint8_t> huffman_code_lengths(const std::vector<uint64_t>& freqs, int max_len) {
  require(max_len >= 1 && max_len <= 32, "huffman: max code length {} out of range [1, 32]", max_len);
  std::vector<uint8_t> out(freqs.size(), 0);
  std::vector<uint32_t> order;
  for (size_t i = 0; i < freqs.size(); ++i)
    if (freqs[i] > 0) order.push_back(static_cast<uint32_t>(i));
  const size_t n = order.size();
  if (n == 0) return out;
  if (n == 1) {
    out[order[0]] = 1;
    return out;
  }
  require(max_len >= 32 || n <= (uint64_t(1) << max_len), "huffman: {} symbols cannot fit codes of at most {} bits", n,
          max_len);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return freqs[a] != freqs[b] ? freqs[a] < freqs[b] : a < b;
  });
  // Two-queue Huffman: nodes 0..n-1 are leaves (sorted), n.. internal nodes.
  std::vector<uint64_t> weight(2 * n - 1);
  std::vector<uint32_t> parent(2 * n - 1, 0);
  for (size_t i = 0; i < n; ++i) weight[i] = freqs[order[i]];
  size_t leaf = 0, inner = n, next = n;
  auto pick = [&]() -> size_t {
    if (leaf < n && (inner >= next || weight[leaf] <= weight[inner])) return leaf++;
    return inner++;
  };
  while (next < 2 * n - 1) {
    size_t a = pick();
    size_t b = pick();
    weight[next] = weight[a] + weight[b];
    parent[a] = parent[b] = static_cast<uint32_t>(next);
    ++next;
  }
  std::vector<uint32_t> depth(2 * n - 1, 0);
  for (size_t i = 2 * n - 2; i-- > 0;) depth[i] = depth[parent[i]] + 1;
  uint32_t longest = 0;
  for (size_t i = 0; i < n; ++i) longest = std::max(longest, depth[i]);
  if (longest <= static_cast<uint32_t>(max_len)) {
    for (size_t i = 0; i < n; ++i) out[order[i]] = static_cast<uint8_t>(depth[i]);
    return out;
  }
  std::vector<uint64_t> sorted_w(n);
  for (size_t i = 0; i < n; ++i) sorted_w[i] = freqs[order[i]];
  std::vector<uint8_t> len = package_merge(sorted_w, max_len);
  for (size_t i = 0; i < n; ++i) out[order[i]] = len[i];
  return out;
}

std::vector<uint32_t> canonical_codes(const std::vector<uint8_t>& lengths) {
  uint32_t count[34] = {};
  for (uint8_t l : lengths) {
    require(l <= 32, "huffman: code length {} above 32", l);
    ++count[l];
  }
  count[0] = 0;
  // Kraft check in integers: sum count[l] * 2^(32-l) <= 2^32.
  uint64_t kraft = 0;
  for (int l = 1; l <= 32; ++l) kraft += uint64_t(count[l]) << (32 - l);
  require(kraft <= (uint64_t(1) << 32), "huffman: code lengths over-subscribe the code space (Kraft sum > 1)");
  uint64_t next[34] = {};
  uint64_t code = 0;
  for (int l = 1; l <= 32; ++l) {
    code = (code + count[l - 1]) << 1;
    next[l] = code;
  }
  std::vector<uint32_t> codes(lengths.size(), 0);
  for (size_t i = 0; i < lengths.size(); ++i)
    if (lengths[i] > 0) codes[i] = static_cast<uint32_t>(next[lengths[i]]++);
  return codes;
}

HuffmanCoder::HuffmanCoder(const EntropyModel& model, int max_len) {
  require(!model.empty(), "huffman coder: empty entropy model");
  require(max_len >= 16 && max_len <= 32, "huffman coder: max code length {} out of range [16, 32]", max_len);
  tables_.resize(static_cast<size_t>(model.num_tables()));
  for (int64_t t = 0; t < model.num_tables(); ++t) {
    Table& tb = tables_[static_cast<size_t>(t)];
    const auto& counts = model.counts(t);
    tb.k = static_cast<int64_t>(counts.size());
    if (tb.k == 1) {
      tb.len = {0};
      tb.code = {0};
      continue;
    }
    tb.len = huffman_code_lengths(counts, max_len);
    tb.code = canonical_codes(tb.len);
    for (uint8_t l : tb.len) {
      require(l >= 1, "huffman coder: symbol without a code");  // all counts are >= 1
      tb.max_len = std::max<int>(tb.max_len, l);
      ++tb.count[l];
    }
    // Canonical decode tables.
    uint32_t code = 0, index = 0;
    for (int l = 1; l <= 32; ++l) {
      code = (code + (l > 1 ? tb.count[l - 1] : 0)) << (l > 1 ? 1 : 0);
      tb.first_code[l] = code;
      tb.first_index[l] = index;
      index += tb.count[l];
    }
    tb.sorted.resize(static_cast<size_t>(tb.k));
    std::vector<uint32_t> fill(33, 0);
    for (int64_t s = 0; s < tb.k; ++s) {
      int l = tb.len[static_cast<size_t>(s)];
      tb.sorted[tb.first_index[l] + fill[static_cast<size_t>(l)]++] = static_cast<int32_t>(s);
    }
    tb.lut_bits = std::min(tb.max_len, 11);
    tb.lut.assign(size_t(1) << tb.lut_bits, 0);
    for (int64_t s = 0; s < tb.k; ++s) {
      int l = tb.len[static_cast<size_t>(s)];
      if (l > tb.lut_bits) continue;
      uint32_t base = tb.code[static_cast<size_t>(s)] << (tb.lut_bits - l);
      uint32_t span = 1u << (tb.lut_bits - l);
      for (uint32_t j = 0; j < span; ++j) tb.lut[base + j] = (static_cast<uint32_t>(s) << 5) | static_cast<uint32_t>(l);
    }
  }
  table_of_.resize(static_cast<size_t>(model.slots()));
  for (int64_t s = 0; s < model.slots(); ++s) table_of_[static_cast<size_t>(s)] = model.table_of(s);
}

void HuffmanCoder::encode_item(const int32_t* idx, std::vector<uint8_t>& out) const {
  detail::BitWriter w(out);
  for (size_t s = 0; s < table_of_.size(); ++s) {
    const Table& tb = tables_[static_cast<size_t>(table_of_[s])];
    int32_t v = idx[s];
    if (v < 0 || v >= tb.k) fail("huffman coder: slot {} index {} outside [0, {})", s, v, tb.k);
    w.put(tb.code[static_cast<size_t>(v)], tb.len[static_cast<size_t>(v)]);
  }
  w.flush();
}

int64_t HuffmanCoder::item_bits(const int32_t* idx) const {
  int64_t bits = 0;
  for (size_t s = 0; s < table_of_.size(); ++s) {
    const Table& tb = tables_[static_cast<size_t>(table_of_[s])];
    int32_t v = idx[s];
    if (v < 0 || v >= tb.k) fail("huffman coder: slot {} index {} outside [0, {})", s, v, tb.k);
    bits += tb.len[static_cast<size_t>(v)];
  }
  return bits;
}

void HuffmanCoder::decode_item(const uint8_t* data, size_t size, int32_t* idx) const {
  detail::BitReader r(data, size);
  const uint64_t have = uint64_t(size) * 8;
  for (size_t s = 0; s < table_of_.size(); ++s) {
    const Table& tb = tables_[static_cast<size_t>(table_of_[s])];
    if (tb.k == 1) {
      idx[s] = 0;
      continue;
    }
    // Stop early (and bounded) once the reader ran past the payload.
    require(r.position() < have, "huffman payload truncated: ran out of bits at slot {} of {}", s, table_of_.size());
    uint32_t e = tb.lut[r.peek(tb.lut_bits)];
    if (e & 31u) {
      idx[s] = static_cast<int32_t>(e >> 5);
      r.skip(static_cast<int>(e & 31u));
      continue;
    }
    uint32_t v = r.peek(tb.max_len);
    bool found = false;
    for (int l = tb.lut_bits + 1; l <= tb.max_len; ++l) {
      uint32_t c = v >> (tb.max_len - l);
      uint32_t off = c - tb.first_code[l];
      if (c >= tb.first_code[l] && off < tb.count[l]) {
        idx[s] = tb.sorted[tb.first_index[l] + off];
        r.skip(l);
        found = true;
        break;
      }
    }
    require(found, "huffman payload: invalid code at slot {}", s);
  }
  r.finish("huffman");
}

CoderInfo huffman_coder_entry() {
  return {CoderId::huffman, "huffman", "canonical length-limited Huffman codes (at most 24 bits per symbol)",
          [](const EntropyModel& m) -> std::unique_ptr<EntropyCoder> { return std::make_unique<HuffmanCoder>(m); }};
}

}  // namespace semcodec
