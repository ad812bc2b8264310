// .npy bytes with a hand-written header, for the byte orders, layouts and
// damaged headers that encode_npy never writes (tests and fuzz seeds).
#pragma once
#include <string>

namespace semcodec::test {

// Version major.0, the header padded with spaces and '\n' so that the data
// starts at a multiple of 64 bytes, as numpy writes it.
inline std::string npy_with_header(int major, const std::string& dict, const std::string& payload) {
  const size_t len_bytes = major == 1 ? 2 : 4;
  size_t pre = 6 + 2 + len_bytes;
  size_t hlen = (pre + dict.size() + 1 + 63) / 64 * 64 - pre;
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t b = 0; b < len_bytes; ++b) out.push_back(static_cast<char>((hlen >> (8 * b)) & 0xFF));
  out += dict + std::string(hlen - dict.size() - 1, ' ') + "\n" + payload;
  return out;
}

}  // namespace semcodec::test
