#include "codec/entropy/entropy_coder.h"

namespace semcodec {

int ceil_log2(uint64_t k) {
  int b = 0;
  while (b < 64 && (uint64_t(1) << b) < k) ++b;
  return b;
}

}  // namespace semcodec
