#include "codec/entropy/bit_io.h"

#include "util/error.h"

namespace semcodec {

void detail::BitReader::finish(const char* coder) const {
  uint64_t have = uint64_t(size_) * 8;
  require(pos_ <= have, "{} payload truncated: decoding needs {} bits but the payload has {}", coder, pos_, have);
  require(have - pos_ < 8, "{} payload has {} unused trailing bits (expected fewer than 8 padding bits)", coder,
          have - pos_);
  if (have > pos_) {
    int pad = static_cast<int>(have - pos_);
    uint8_t last = data_[size_ - 1];
    require((last & ((1u << pad) - 1)) == 0, "{} payload has non-zero padding bits", coder);
  }
}

void put_rice(detail::BitWriter& w, int64_t v, int r) {
  require(v > -(int64_t(1) << 31) && v < (int64_t(1) << 31), "rice code: value {} out of range", v);
  require(r >= 0 && r <= kMaxRiceParameter, "rice code: parameter {} outside [0, {}]", r, kMaxRiceParameter);
  const uint32_t u = zigzag(v);
  const uint32_t q = u >> r;
  if (q >= static_cast<uint32_t>(kRiceEscape)) {
    w.put((1u << kRiceEscape) - 1, kRiceEscape);
    w.put(u, 32);
    return;
  }
  for (uint32_t left = q; left > 0;) {  // q ones, in chunks the writer takes
    const int n = static_cast<int>(left < 24 ? left : 24);
    w.put((1u << n) - 1, n);
    left -= static_cast<uint32_t>(n);
  }
  w.put(0, 1);
  if (r > 0) w.put(u & ((1u << r) - 1), r);
}

int64_t get_rice(detail::BitReader& rd, int r) {
  uint32_t q = 0;
  while (q < static_cast<uint32_t>(kRiceEscape) && rd.get(1)) ++q;
  if (q == static_cast<uint32_t>(kRiceEscape)) return unzigzag(rd.get(32));
  const uint32_t low = r > 0 ? rd.get(r) : 0;
  return unzigzag((q << r) | low);
}

}  // namespace semcodec
