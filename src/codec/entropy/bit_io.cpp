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

}  // namespace semcodec
