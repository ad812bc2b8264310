// Stream adaptation: an optional second face of a Quantizer. A method that
// implements it looks at all the rows of a stream before coding any of them,
// derives side information from them (what the encoder knows and the decoder
// does not: e.g. the stream's mean and principal directions, the step that
// meets the rate target) and sends it once, in the stream header
// (docs/bitstream.md, "Adaptive streams"). Every item of the stream is then
// coded against that side information; single items (packets) keep the
// method's fixed default context.
//
// The side information carries its own entropy tables: one table of integer
// counts per slot, taken from tables stored with the method, so decoding the
// indices stays integer-exact on every machine.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace semcodec {

struct StreamSideInfo {
  virtual ~StreamSideInfo() = default;
  std::vector<uint8_t> bytes;                      // what the stream header stores
  int64_t slots = 0;                               // indices per item in this stream
  std::vector<int64_t> alphabet_sizes;             // per slot
  std::vector<std::vector<uint64_t>> slot_counts;  // per slot: entropy-table counts (each >= 1)
};

class StreamAdaptive {
 public:
  virtual ~StreamAdaptive() = default;
  // Encoder: chooses the side information for the rows x [N, D] (rate control included).
  virtual std::shared_ptr<const StreamSideInfo> plan_stream(const at::Tensor& x) = 0;
  // Decoder: parses side information read from a stream (untrusted bytes).
  virtual std::shared_ptr<const StreamSideInfo> read_side_info(const uint8_t* data, size_t size) = 0;
  // [N, D] -> [N, side.slots] int64, and back to [N, D] float32.
  virtual at::Tensor encode(const at::Tensor& x, const StreamSideInfo& side) = 0;
  virtual at::Tensor decode(const at::Tensor& indices, const StreamSideInfo& side) = 0;
  // The fixed context single items (packets) are coded with: its slot counts
  // are the method's own packet tables (fit-entropy stores them as is).
  virtual const StreamSideInfo& packet_context() const = 0;
};

}  // namespace semcodec
