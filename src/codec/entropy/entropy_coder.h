// Entropy coding of quantizer indices: the interface every coder implements
// (raw, canonical Huffman, static rANS; coder_registry.h lists them). A coder
// is built from an EntropyModel and codes each item as an independent,
// byte-aligned payload (the unit a device sends).
//
// This folder (codec/entropy/, the semcodec_entropy library) is pure C++17 +
// fmt, without LibTorch or HDF5: edge devices and the fuzzer build it alone.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/entropy/entropy_model.h"

namespace semcodec {

// The coder of a stream, as its id byte in bitstreams and packets. Ids are
// stable: a coder keeps its number forever and no number is reused. The
// enumerators name the built-in coders; coder_registry.cpp maps every id to
// its name and factory.
enum class CoderId : uint8_t { raw = 0, huffman = 1, rans = 2 };

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

// ceil(log2 k) for k >= 1 (0 for k = 1).
int ceil_log2(uint64_t k);

}  // namespace semcodec
