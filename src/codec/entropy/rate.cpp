#include "codec/entropy/rate.h"

#include <cmath>
#include <cstdint>

#include "util/error.h"

namespace semcodec {

StreamRate stream_rate(const DecodedStream& decoded, size_t stream_size) {
  StreamRate r;
  r.coder = decoded.header.coder;
  r.items = decoded.header.items;
  r.slots = decoded.header.slots;
  r.total_bytes = stream_size;
  if (decoded.header.adaptive) {  // side information and the message are what the items cost
    r.header_bytes = decoded.header.side_offset;
    r.payload_bytes = stream_size - r.header_bytes;
    return r;
  }
  r.header_bytes = decoded.header.body_offset;
  for (uint32_t b : decoded.payload_bytes) r.payload_bytes += b;
  r.framing_bytes = r.total_bytes - r.header_bytes - r.payload_bytes;
  return r;
}

DecodedStream scan_stream(const uint8_t* data, size_t size) {
  DecodedStream out;
  out.header = read_stream_header(data, size);
  const StreamHeader& h = out.header;
  if (h.adaptive) return out;  // one message for all items: nothing to split without the model
  size_t pos = h.body_offset;
  for (int64_t i = 0; i < h.items; ++i) {
    const uint64_t len = get_varint(data, size, &pos, "payload length");
    require(len <= size - pos, "bitstream truncated: item {} of {} claims {} payload bytes but only {} remain", i,
            h.items, len, size - pos);
    require(len <= UINT32_MAX, "bitstream item {}: implausible payload length {}", i, len);
    out.payload_bytes.push_back(static_cast<uint32_t>(len));
    pos += static_cast<size_t>(len);
  }
  require(pos == size, "bitstream has {} bytes of trailing garbage after its {} items", size - pos, h.items);
  return out;
}

double empirical_entropy_bits(const int32_t* indices, int64_t items, int64_t slots,
                              const std::vector<int64_t>& alphabet_sizes, TableMode mode, int64_t positions,
                              int64_t subspaces) {
  if (items <= 0) return 0.0;
  // The uniform model only supplies (and validates) the slot -> table map.
  const EntropyModel layout = EntropyModel::uniform(slots, alphabet_sizes, mode, positions, subspaces);
  std::vector<std::vector<uint64_t>> counts(static_cast<size_t>(layout.num_tables()));
  for (int64_t t = 0; t < layout.num_tables(); ++t) counts[static_cast<size_t>(t)].assign(layout.counts(t).size(), 0);
  for (int64_t i = 0; i < items; ++i)
    for (int64_t s = 0; s < slots; ++s) {
      const int32_t v = indices[i * slots + s];
      require(v >= 0 && v < layout.alphabet_size(s), "entropy: item {} slot {} has index {} outside [0, {})", i, s, v,
              layout.alphabet_size(s));
      ++counts[static_cast<size_t>(layout.table_of(s))][static_cast<size_t>(v)];
    }
  double bits = 0;
  for (const auto& c : counts) {
    uint64_t total = 0;
    for (uint64_t x : c) total += x;
    for (uint64_t x : c)
      if (x) bits -= double(x) * std::log2(double(x) / double(total));
  }
  return bits / double(items);
}

double model_code_bits(const EntropyModel& model, const int32_t* indices, int64_t items) {
  if (items <= 0) return 0.0;
  const int64_t slots = model.slots();
  std::vector<double> log_total(static_cast<size_t>(model.num_tables()));
  for (int64_t t = 0; t < model.num_tables(); ++t) {
    uint64_t total = 0;
    for (uint64_t x : model.counts(t)) total += x;
    log_total[static_cast<size_t>(t)] = std::log2(double(total));
  }
  double bits = 0;
  for (int64_t i = 0; i < items; ++i)
    for (int64_t s = 0; s < slots; ++s) {
      const int32_t v = indices[i * slots + s];
      require(v >= 0 && v < model.alphabet_size(s), "entropy: item {} slot {} has index {} outside [0, {})", i, s, v,
              model.alphabet_size(s));
      const int64_t t = model.table_of(s);
      bits += log_total[static_cast<size_t>(t)] - std::log2(double(model.counts(t)[static_cast<size_t>(v)]));
    }
  return bits / double(items);
}

int64_t raw_bits_per_item(const std::vector<int64_t>& alphabet_sizes) {
  int64_t bits = 0;
  for (int64_t k : alphabet_sizes) bits += ceil_log2(static_cast<uint64_t>(k));
  return bits;
}

}  // namespace semcodec
