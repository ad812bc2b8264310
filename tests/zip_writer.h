// A minimal zip writer for tests and fuzz seeds: stored (uncompressed)
// entries with correct CRC-32s, the data of each entry aligned to 64 bytes
// the way PyTorch's writer does it (padding in an extra field). With
// `zip64`, every size and offset of the central directory is saturated and
// given in zip64 extra fields, and the archive ends with zip64 records (what
// PyTorch writes above 4 GiB). With `deflate`, entries are deflated (what
// numpy.savez_compressed writes). Hostile archives are made by editing its
// output.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace semcodec::test {

using ZipFiles = std::vector<std::pair<std::string, std::string>>;  // name, bytes

inline void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// Raw deflate (no zlib header), as zip stores it.
inline std::string raw_deflate(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, static_cast<uLong>(in.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

inline std::string make_zip(const ZipFiles& files, bool zip64 = false, bool deflate = false) {
  std::string out, cd;
  for (const auto& [name, raw] : files) {
    const uint32_t crc = static_cast<uint32_t>(
        crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(raw.data()), static_cast<uInt>(raw.size())));
    const std::string data = deflate ? raw_deflate(raw) : raw;
    const uint16_t method = deflate ? 8 : 0;
    const uint64_t offset = out.size();
    size_t pad = (64 - (offset + 30 + name.size()) % 64) % 64;
    if (pad > 0 && pad < 4) pad += 64;
    out += "PK\x03\x04";
    put_le(out, 20, 2);  // version needed
    put_le(out, 0, 2);   // flags
    put_le(out, method, 2);
    put_le(out, 0, 4);   // time, date
    put_le(out, crc, 4);
    put_le(out, data.size(), 4);
    put_le(out, raw.size(), 4);
    put_le(out, name.size(), 2);
    put_le(out, pad, 2);
    out += name;
    if (pad) {
      out += "FB";
      put_le(out, pad - 4, 2);
      out.append(pad - 4, 'Z');
    }
    out += data;
    cd += "PK\x01\x02";
    put_le(cd, 20, 2);  // version made by
    put_le(cd, 20, 2);
    put_le(cd, 0, 2);
    put_le(cd, method, 2);
    put_le(cd, 0, 4);
    put_le(cd, crc, 4);
    put_le(cd, zip64 ? 0xFFFFFFFFu : data.size(), 4);
    put_le(cd, zip64 ? 0xFFFFFFFFu : raw.size(), 4);
    put_le(cd, name.size(), 2);
    put_le(cd, zip64 ? 28 : 0, 2);  // extra
    put_le(cd, 0, 2);               // comment
    put_le(cd, 0, 2);               // disk
    put_le(cd, 0, 2);               // internal attributes
    put_le(cd, 0, 4);               // external attributes
    put_le(cd, zip64 ? 0xFFFFFFFFu : offset, 4);
    cd += name;
    if (zip64) {
      put_le(cd, 1, 2);
      put_le(cd, 24, 2);
      put_le(cd, raw.size(), 8);   // uncompressed
      put_le(cd, data.size(), 8);  // compressed
      put_le(cd, offset, 8);
    }
  }
  const uint64_t cd_offset = out.size();
  out += cd;
  if (zip64) {
    const uint64_t record = out.size();
    out += "PK\x06\x06";
    put_le(out, 44, 8);  // size of the rest of the record
    put_le(out, 45, 2);
    put_le(out, 45, 2);
    put_le(out, 0, 4);  // disk
    put_le(out, 0, 4);  // disk of the directory
    put_le(out, files.size(), 8);
    put_le(out, files.size(), 8);
    put_le(out, cd.size(), 8);
    put_le(out, cd_offset, 8);
    out += "PK\x06\x07";
    put_le(out, 0, 4);
    put_le(out, record, 8);
    put_le(out, 1, 4);
  }
  out += "PK\x05\x06";
  put_le(out, 0, 4);  // disks
  put_le(out, zip64 ? 0xFFFF : files.size(), 2);
  put_le(out, zip64 ? 0xFFFF : files.size(), 2);
  put_le(out, zip64 ? 0xFFFFFFFFu : cd.size(), 4);
  put_le(out, zip64 ? 0xFFFFFFFFu : cd_offset, 4);
  put_le(out, 0, 2);
  return out;
}

}  // namespace semcodec::test
