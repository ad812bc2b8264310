// Rate accounting for coded indices: what a stream actually costs (payload
// bits, header and framing overhead counted apart) next to the limits the
// coders are measured against: the fixed-length raw rate, the empirical
// entropy of the indices under each table mode, and the ideal code length
// under a given model. Pure C++17 (no LibTorch), like the coders.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/entropy/bitstream.h"
#include "codec/entropy/entropy_coder.h"

namespace semcodec {

// Where the bytes of a stream go. payload_bytes is what the items cost (for
// an adaptive stream: its side information and its one message);
// header (magic .. slot count) and framing (per-item length varints) are the
// container's overhead.
struct StreamRate {
  CoderId coder = CoderId::raw;  // the coder the stream's items were written with (its header's)
  int64_t items = 0, slots = 0;
  uint64_t total_bytes = 0, header_bytes = 0, framing_bytes = 0, payload_bytes = 0;
  double payload_bits_per_item() const { return items ? 8.0 * double(payload_bytes) / double(items) : 0.0; }
  double total_bits_per_item() const { return items ? 8.0 * double(total_bytes) / double(items) : 0.0; }
};
StreamRate stream_rate(const DecodedStream& decoded, size_t stream_size);

// Reads a stream's header and record lengths without decoding any payload (no
// model needed, e.g. for `semcodec inspect`): indices stay empty,
// payload_bytes has one entry per item. Untrusted input: every length is
// checked against the bytes that remain; trailing bytes are an error.
DecodedStream scan_stream(const uint8_t* data, size_t size);

// Plug-in empirical entropy of `items` x `slots` indices (item-major) in bits
// per item when slots share tables as `mode` says: sum over tables of the
// entropy of that table's observed symbol frequencies, times the slots using
// it. This is the limit a static coder with tables fitted on these very
// indices can approach (without smoothing or table cost).
double empirical_entropy_bits(const int32_t* indices, int64_t items, int64_t slots,
                              const std::vector<int64_t>& alphabet_sizes, TableMode mode, int64_t positions = 0,
                              int64_t subspaces = 0);

// Ideal code length, -sum log2 p(index), in bits per item, of the indices under
// the model's smoothed counts: what an arithmetic coder with these tables would
// spend. Indices out of range throw Error.
double model_code_bits(const EntropyModel& model, const int32_t* indices, int64_t items);

// The raw rate: sum over slots of ceil(log2 K_s).
int64_t raw_bits_per_item(const std::vector<int64_t>& alphabet_sizes);

}  // namespace semcodec
