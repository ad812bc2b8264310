// What a bitstream holds and where its bytes go (`semcodec inspect`), as JSON.
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "codec/codec.h"

namespace semcodec {

// From the stream's layout alone (no model): format version, coder,
// fingerprint, items, slots, total / header / framing / payload bytes, bits
// per item with and without the overhead, and the smallest and largest item
// payload. Error on a malformed stream.
nlohmann::json describe_stream(const uint8_t* data, size_t size);

// Decodes every item with `codec` (which verifies the stream against its
// checkpoint) and adds the raw rate, the ideal code length under the stored
// tables ("model_bits_per_item", "stored_table_mode") and the empirical
// entropy of the decoded indices under each table mode the layout allows.
void add_decoded_rates(nlohmann::json& description, const Codec& codec, const uint8_t* data, size_t size);

}  // namespace semcodec
