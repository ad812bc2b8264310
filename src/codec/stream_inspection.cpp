#include "codec/stream_inspection.h"

#include <algorithm>

#include "codec/entropy/rate.h"

namespace semcodec {

nlohmann::json describe_stream(const uint8_t* data, size_t size) {
  const DecodedStream s = scan_stream(data, size);
  const StreamRate r = stream_rate(s, size);
  uint32_t smallest = 0, largest = 0;
  if (!s.payload_bytes.empty()) {
    smallest = *std::min_element(s.payload_bytes.begin(), s.payload_bytes.end());
    largest = *std::max_element(s.payload_bytes.begin(), s.payload_bytes.end());
  }
  nlohmann::json j = {{"format_version", s.header.version},
          {"coder", coder_name(s.header.coder)},
          {"fingerprint", fingerprint_hex(s.header.fingerprint)},
          {"items", r.items},
          {"slots", r.slots},
          {"total_bytes", r.total_bytes},
          {"header_bytes", r.header_bytes},
          {"framing_bytes", r.framing_bytes},
          {"payload_bytes", r.payload_bytes},
          {"payload_bits_per_item", r.payload_bits_per_item()},
          {"total_bits_per_item", r.total_bits_per_item()},
          {"min_payload_bytes", smallest},
          {"max_payload_bytes", largest}};
  // An adaptive stream's items share its side information and one message:
  // there are no per-item sizes, but the side information's share is known.
  j["adaptive"] = s.header.adaptive;
  if (s.header.adaptive) {
    j.erase("min_payload_bytes");
    j.erase("max_payload_bytes");
    j["side_info_bytes"] = s.header.side_size;
    j["message_bytes"] = r.payload_bytes - s.header.side_size;
    j["side_info_bits_per_item"] = r.items ? 8.0 * static_cast<double>(s.header.side_size) / static_cast<double>(r.items) : 0.0;
  }
  return j;
}

void add_decoded_rates(nlohmann::json& j, const Codec& codec, const uint8_t* data, size_t size) {
  const DecodedStream d = codec.decode_indices(data, size);
  const EntropyModel& m = codec.model();
  const int64_t n = d.header.items;
  j["raw_bits_per_item"] = raw_bits_per_item(m.alphabet_sizes());
  // An adaptive stream is coded with the tables its side information names,
  // not the checkpoint's packet tables: those rates would not apply.
  if (d.header.adaptive) return;
  j["model_bits_per_item"] = model_code_bits(m, d.indices.data(), n);
  j["stored_table_mode"] = table_mode_name(m.mode());
  nlohmann::json entropy = nlohmann::json::object();
  for (TableMode mode : kTableModes) {
    if ((mode == TableMode::per_subspace || mode == TableMode::per_position) && m.subspaces() == 0) continue;
    entropy[table_mode_name(mode)] =
        empirical_entropy_bits(d.indices.data(), n, m.slots(), m.alphabet_sizes(), mode, m.positions(), m.subspaces());
  }
  j["entropy_bits_per_item"] = entropy;
}

}  // namespace semcodec
