#include "codec/entropy/rans_coder.h"

#include <algorithm>
#include <queue>

#include "codec/entropy/coder_registry.h"
#include "util/error.h"

namespace semcodec {

int rans_scale_bits(int64_t k) {
  int s = ceil_log2(static_cast<uint64_t>(std::max<int64_t>(k, 1))) + 8;
  return std::min(24, std::max(16, s));
}

std::vector<uint32_t> rans_quantize(const std::vector<uint64_t>& counts, int scale_bits) {
  require(scale_bits >= 1 && scale_bits <= 24, "rans: scale bits {} out of range [1, 24]", scale_bits);
  const uint64_t total = uint64_t(1) << scale_bits;
  const size_t k = counts.size();
  require(k >= 1 && k <= total, "rans: {} symbols do not fit a total of 2^{}", k, scale_bits);
  uint64_t sum = 0;
  for (uint64_t c : counts) {
    require(c >= 1 && c <= kMaxTableTotal, "rans: count {} out of range [1, 2^40]", c);
    sum += c;
    require(sum <= kMaxTableTotal, "rans: counts sum above 2^40");
  }
  std::vector<uint32_t> f(k);
  std::vector<uint64_t> rem(k);
  uint64_t assigned = 0;
  for (size_t i = 0; i < k; ++i) {
    uint64_t num = counts[i] * total;  // <= 2^40 * 2^24
    uint64_t q = num / sum;
    rem[i] = num % sum;
    if (q == 0) {
      q = 1;
      rem[i] = 0;  // already rounded up
    }
    f[i] = static_cast<uint32_t>(q);
    assigned += q;
  }
  if (assigned < total) {
    // Hand out the shortfall by largest remainder (ties: lower symbol index).
    std::vector<uint32_t> order(k);
    for (size_t i = 0; i < k; ++i) order[i] = static_cast<uint32_t>(i);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return rem[a] != rem[b] ? rem[a] > rem[b] : a < b;
    });
    uint64_t need = total - assigned;
    for (size_t j = 0; need > 0; j = (j + 1) % k, --need) ++f[order[j]];
  } else if (assigned > total) {
    // Take the excess from the largest frequencies (ties: lower index), never below 1.
    auto cmp = [&](uint32_t a, uint32_t b) { return f[a] != f[b] ? f[a] < f[b] : a > b; };
    std::priority_queue<uint32_t, std::vector<uint32_t>, decltype(cmp)> pq(cmp);
    for (size_t i = 0; i < k; ++i)
      if (f[i] > 1) pq.push(static_cast<uint32_t>(i));
    uint64_t excess = assigned - total;
    while (excess > 0) {
      require(!pq.empty(), "rans: cannot quantize frequencies");  // impossible when k <= total
      uint32_t i = pq.top();
      pq.pop();
      --f[i];
      --excess;
      if (f[i] > 1) pq.push(i);
    }
  }
  return f;
}

RansCoder::RansCoder(const EntropyModel& model) {
  require(!model.empty(), "rans coder: empty entropy model");
  tables_.resize(static_cast<size_t>(model.num_tables()));
  for (int64_t t = 0; t < model.num_tables(); ++t) {
    Table& tb = tables_[static_cast<size_t>(t)];
    const auto& counts = model.counts(t);
    tb.scale = rans_scale_bits(static_cast<int64_t>(counts.size()));
    tb.freq = rans_quantize(counts, tb.scale);
    tb.cum.assign(tb.freq.size() + 1, 0);
    for (size_t i = 0; i < tb.freq.size(); ++i) tb.cum[i + 1] = tb.cum[i] + tb.freq[i];
    require(tb.cum.back() == (1u << tb.scale), "rans coder: table {} frequencies do not sum to 2^{}", t, tb.scale);
  }
  table_of_.resize(static_cast<size_t>(model.slots()));
  for (int64_t s = 0; s < model.slots(); ++s) table_of_[static_cast<size_t>(s)] = model.table_of(s);
}

void RansCoder::encode_item(const int32_t* idx, std::vector<uint8_t>& out) const { encode_message(idx, 1, out); }

void RansCoder::decode_item(const uint8_t* data, size_t size, int32_t* idx) const { decode_message(data, size, 1, idx); }

void RansCoder::encode_message(const int32_t* idx, int64_t items, std::vector<uint8_t>& out) const {
  const size_t n = table_of_.size();
  const size_t total = static_cast<size_t>(items) * n;
  for (size_t i = 0; i < total; ++i) {
    const Table& tb = tables_[static_cast<size_t>(table_of_[i % n])];
    if (idx[i] < 0 || static_cast<size_t>(idx[i]) >= tb.freq.size())
      fail("rans coder: item {} slot {} index {} outside [0, {})", i / n, i % n, idx[i], tb.freq.size());
  }
  std::vector<uint8_t> rev;  // renormalization bytes in emission order
  rev.reserve(total / 2 + 8);
  uint64_t x = kRansL;
  for (size_t i = total; i-- > 0;) {
    const Table& tb = tables_[static_cast<size_t>(table_of_[i % n])];
    const uint64_t f = tb.freq[static_cast<size_t>(idx[i])];
    const uint64_t c = tb.cum[static_cast<size_t>(idx[i])];
    const uint64_t x_max = ((kRansL >> tb.scale) << 8) * f;
    while (x >= x_max) {
      rev.push_back(static_cast<uint8_t>(x & 0xff));
      x >>= 8;
    }
    x = ((x / f) << tb.scale) + (x % f) + c;
  }
  for (int i = kRansStateBytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(x >> (8 * i)));
  out.insert(out.end(), rev.rbegin(), rev.rend());
}

void RansCoder::decode_message(const uint8_t* data, size_t size, int64_t items, int32_t* idx) const {
  require(size >= static_cast<size_t>(kRansStateBytes), "rans payload truncated: {} bytes, the state alone needs {}",
          size, kRansStateBytes);
  uint64_t x = 0;
  for (int i = 0; i < kRansStateBytes; ++i) x = (x << 8) | data[i];
  require(x >= kRansL && x < (kRansL << 8), "rans payload: initial state {:#x} outside [2^31, 2^39) (corrupt payload)", x);
  size_t pos = kRansStateBytes;
  const size_t n = table_of_.size();
  const size_t total = static_cast<size_t>(items) * n;
  for (size_t i = 0; i < total; ++i) {
    const size_t s = i % n;
    const Table& tb = tables_[static_cast<size_t>(table_of_[s])];
    const uint32_t mask = (1u << tb.scale) - 1;
    const uint32_t m = static_cast<uint32_t>(x & mask);
    // Largest symbol with cum[sym] <= m.
    size_t sym = static_cast<size_t>(std::upper_bound(tb.cum.begin(), tb.cum.end(), m) - tb.cum.begin()) - 1;
    idx[i] = static_cast<int32_t>(sym);
    x = tb.freq[sym] * (x >> tb.scale) + m - tb.cum[sym];
    while (x < kRansL) {
      if (pos >= size) {
        if (items == 1) fail("rans payload truncated: ran out of bytes at slot {} of {}", s, n);
        fail("rans payload truncated: ran out of bytes at item {} slot {} of {}", i / n, s, n);
      }
      x = (x << 8) | data[pos++];
    }
  }
  require(pos == size, "rans payload has {} unused trailing bytes", size - pos);
  require(x == kRansL, "rans payload: final state {:#x} != initial state (corrupt payload)", x);
}

CoderInfo rans_coder_entry() {
  return {CoderId::rans, "rans", "static rANS, byte-wise renormalization, a 5-byte final state per item",
          [](const EntropyModel& m) -> std::unique_ptr<EntropyCoder> { return std::make_unique<RansCoder>(m); }};
}

}  // namespace semcodec
