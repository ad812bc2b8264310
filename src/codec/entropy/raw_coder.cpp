#include "codec/entropy/raw_coder.h"

#include <memory>

#include "codec/entropy/bit_io.h"
#include "codec/entropy/coder_registry.h"
#include "util/error.h"

namespace semcodec {

RawCoder::RawCoder(std::vector<int64_t> alphabet_sizes) : alphabet_(std::move(alphabet_sizes)) {
  require(!alphabet_.empty() && static_cast<int64_t>(alphabet_.size()) <= kMaxSlots,
          "raw coder: slot count {} out of range [1, {}]", alphabet_.size(), kMaxSlots);
  for (size_t s = 0; s < alphabet_.size(); ++s) {
    int64_t k = alphabet_[s];
    require(k >= 1 && k <= kMaxAlphabetSize, "raw coder: alphabet size {} of slot {} out of range", k, s);
    bits_.push_back(ceil_log2(static_cast<uint64_t>(k)));
    total_bits_ += bits_.back();
  }
}

void RawCoder::encode_item(const int32_t* idx, std::vector<uint8_t>& out) const {
  detail::BitWriter w(out);
  for (size_t s = 0; s < alphabet_.size(); ++s) {
    int32_t v = idx[s];
    if (v < 0 || v >= alphabet_[s]) fail("raw coder: slot {} index {} outside [0, {})", s, v, alphabet_[s]);
    w.put(static_cast<uint32_t>(v), bits_[s]);
  }
  w.flush();
}

void RawCoder::decode_item(const uint8_t* data, size_t size, int32_t* idx) const {
  require(uint64_t(size) * 8 < uint64_t(total_bits_) + 8 && uint64_t(size) * 8 >= uint64_t(total_bits_),
          "raw coder: payload of {} bytes, expected {} bytes for {} bits", size, (total_bits_ + 7) / 8, total_bits_);
  detail::BitReader r(data, size);
  for (size_t s = 0; s < alphabet_.size(); ++s) {
    uint32_t v = r.get(bits_[s]);
    require(v < static_cast<uint64_t>(alphabet_[s]), "raw coder: slot {} decodes to {} outside [0, {})", s, v,
            alphabet_[s]);
    idx[s] = static_cast<int32_t>(v);
  }
  r.finish("raw coder");
}

CoderInfo raw_coder_entry() {
  return {CoderId::raw, "raw", "fixed-length codes, ceil(log2 K) bits per slot (the raw rate)",
          [](const EntropyModel& m) -> std::unique_ptr<EntropyCoder> { return std::make_unique<RawCoder>(m); }};
}

}  // namespace semcodec
