#include "data/zip_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "util/error.h"

namespace semcodec {

namespace {

// --- sources -------------------------------------------------------------------

void check_range(const ByteSource& s, uint64_t offset, uint64_t n) {
  if (offset > s.size() || n > s.size() - offset)
    fail("{}: read of {} bytes at offset {} lies outside the file ({} bytes)", s.name(), n, offset, s.size());
}

class FileSource final : public ByteSource {
 public:
  explicit FileSource(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      fail("{}: not a regular file", path);
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~FileSource() override { ::close(fd_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  uint64_t size() const override { return size_; }
  const std::string& name() const override { return path_; }
  void read(uint64_t offset, uint64_t n, void* dst) const override {
    check_range(*this, offset, n);
    auto* out = static_cast<char*>(dst);
    while (n > 0) {
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, 1u << 30));
      const ssize_t got = ::pread(fd_, out, chunk, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) fail("{}: read error at offset {}: {}", path_, offset, got < 0 ? std::strerror(errno) : "file shrank");
      out += got;
      offset += static_cast<uint64_t>(got);
      n -= static_cast<uint64_t>(got);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(std::string_view bytes, std::string name) : bytes_(bytes), name_(std::move(name)) {}
  uint64_t size() const override { return bytes_.size(); }
  const std::string& name() const override { return name_; }
  void read(uint64_t offset, uint64_t n, void* dst) const override {
    check_range(*this, offset, n);
    if (n) std::memcpy(dst, bytes_.data() + offset, static_cast<size_t>(n));
  }

 private:
  std::string_view bytes_;
  std::string name_;
};

// --- records -------------------------------------------------------------------

uint64_t le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndLen = 22, kZip64LocatorLen = 20, kZip64EndLen = 56, kCentralLen = 46, kLocalLen = 30;
constexpr uint64_t kSat32 = 0xFFFFFFFFu;

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\'') out += static_cast<char>(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  return out;
}

struct Directory {
  uint64_t count = 0, offset = 0, size = 0;
  uint64_t end = 0;  // where the end records start: the directory must stop here
};

Directory find_directory(const ByteSource& src) {
  const std::string& name = src.name();
  const uint64_t n = src.size();
  if (n < kEndLen) fail("{}: not a zip archive (only {} bytes)", name, n);
  // The end record is the last 22 bytes plus a comment of up to 65535 bytes.
  const uint64_t tail_len = std::min<uint64_t>(n, kEndLen + 65535);
  std::vector<uint8_t> tail(static_cast<size_t>(tail_len));
  src.read(n - tail_len, tail_len, tail.data());
  // The last signature whose comment length reaches exactly the end of the
  // file (a signature inside the comment does not count).
  int64_t at = -1;
  for (int64_t i = static_cast<int64_t>(tail_len - kEndLen); i >= 0; --i) {
    const uint8_t* p = tail.data() + i;
    if (le(p, 4) == kEndSig && static_cast<uint64_t>(i) + kEndLen + le(p + 20, 2) == tail_len) {
      at = i;
      break;
    }
  }
  if (at < 0) fail("{}: not a zip archive (no end-of-central-directory record; truncated?)", name);
  const uint8_t* e = tail.data() + at;
  Directory d;
  d.end = n - tail_len + static_cast<uint64_t>(at);
  const uint64_t disk = le(e + 4, 2), cd_disk = le(e + 6, 2), on_disk = le(e + 8, 2);
  d.count = le(e + 10, 2);
  d.size = le(e + 12, 4);
  d.offset = le(e + 16, 4);
  const bool zip64 = disk == 0xFFFF || cd_disk == 0xFFFF || on_disk == 0xFFFF || d.count == 0xFFFF ||
                     d.size == kSat32 || d.offset == kSat32;
  if (!zip64 && (disk != 0 || cd_disk != 0 || on_disk != d.count))
    fail("{}: multi-disk (split) zip archives are not supported", name);
  if (zip64) {
    if (d.end < kZip64LocatorLen) fail("{}: corrupt zip64 archive (no zip64 locator)", name);
    uint8_t loc[kZip64LocatorLen];
    src.read(d.end - kZip64LocatorLen, kZip64LocatorLen, loc);
    if (le(loc, 4) != kZip64LocatorSig) fail("{}: corrupt zip64 archive (no zip64 locator before the end record)", name);
    if (le(loc + 4, 4) != 0 || le(loc + 16, 4) > 1) fail("{}: multi-disk (split) zip archives are not supported", name);
    const uint64_t rec = le(loc + 8, 8);
    const uint64_t rec_limit = d.end - kZip64LocatorLen;
    if (rec > rec_limit || rec_limit - rec < kZip64EndLen)
      fail("{}: corrupt zip64 archive (zip64 end record at {} lies outside the file)", name, rec);
    uint8_t r[kZip64EndLen];
    src.read(rec, kZip64EndLen, r);
    if (le(r, 4) != kZip64EndSig) fail("{}: corrupt zip64 archive (bad zip64 end record signature)", name);
    if (le(r + 16, 4) != 0 || le(r + 20, 4) != 0 || le(r + 24, 8) != le(r + 32, 8))
      fail("{}: multi-disk (split) zip archives are not supported", name);
    d.count = le(r + 32, 8);
    d.size = le(r + 40, 8);
    d.offset = le(r + 48, 8);
    d.end = rec;
  }
  if (d.offset > d.end || d.size > d.end - d.offset)
    fail("{}: corrupt zip archive (central directory at {} + {} bytes runs past its end record at {})", name, d.offset,
         d.size, d.end);
  return d;
}

// Values of the zip64 extra field (id 1) that replace saturated 32-bit fields.
void apply_zip64_extra(const uint8_t* x, uint64_t xlen, ZipEntry& z, const std::string& where) {
  for (uint64_t p = 0; p + 4 <= xlen;) {
    const uint64_t id = le(x + p, 2), sz = le(x + p + 2, 2);
    if (p + 4 + sz > xlen) fail("{}: corrupt zip extra field", where);
    if (id == 0x0001) {
      const uint8_t* f = x + p + 4;
      uint64_t used = 0;
      for (uint64_t* v : {&z.size, &z.compressed_size, &z.header_offset}) {
        if (*v != kSat32) continue;
        if (used + 8 > sz) fail("{}: corrupt zip64 extra field (too short)", where);
        *v = le(f + used, 8);
        used += 8;
      }
    }
    p += 4 + sz;
  }
}

void crc_check(const ZipEntry& z, const void* data, uint64_t n, const std::string& where) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(data);
  for (uint64_t done = 0; done < n;) {
    const uInt k = static_cast<uInt>(std::min<uint64_t>(1u << 30, n - done));
    crc = crc32(crc, p + done, k);
    done += k;
  }
  if (static_cast<uint32_t>(crc) != z.crc32)
    fail("{}: CRC-32 mismatch (stored {:08x}, computed {:08x}): the archive is corrupt", where, z.crc32,
         static_cast<uint32_t>(crc));
}

}  // namespace

std::shared_ptr<const ByteSource> open_file_source(const std::string& path) { return std::make_shared<FileSource>(path); }

std::shared_ptr<const ByteSource> memory_source(std::string_view bytes, const std::string& name) {
  return std::make_shared<MemorySource>(bytes, name);
}

ZipArchive::ZipArchive(std::shared_ptr<const ByteSource> source, const ZipLimits& limits)
    : source_(std::move(source)), limits_(limits) {
  const std::string& name = source_->name();
  const Directory d = find_directory(*source_);
  if (d.count > limits_.max_entries)
    fail("{}: zip archive declares {} entries (limit {})", name, d.count, limits_.max_entries);
  if (d.count > d.size / kCentralLen)
    fail("{}: corrupt zip archive ({} entries cannot fit in a {}-byte central directory)", name, d.count, d.size);
  if (d.size > limits_.max_directory_bytes)
    fail("{}: zip central directory of {} bytes exceeds the limit of {}", name, d.size, limits_.max_directory_bytes);
  std::vector<uint8_t> cd(static_cast<size_t>(d.size));
  source_->read(d.offset, d.size, cd.data());

  entries_.reserve(static_cast<size_t>(d.count));
  uint64_t pos = 0;
  std::vector<uint8_t> local(kLocalLen + 65535);
  for (uint64_t k = 0; k < d.count; ++k) {
    if (d.size - pos < kCentralLen) fail("{}: corrupt zip archive (central directory truncated at entry {})", name, k);
    const uint8_t* h = cd.data() + pos;
    if (le(h, 4) != kCentralSig) fail("{}: corrupt zip archive (bad central directory record {})", name, k);
    ZipEntry z;
    z.flags = static_cast<uint16_t>(le(h + 8, 2));
    z.method = static_cast<uint16_t>(le(h + 10, 2));
    z.crc32 = static_cast<uint32_t>(le(h + 16, 4));
    z.compressed_size = le(h + 20, 4);
    z.size = le(h + 24, 4);
    const uint64_t nlen = le(h + 28, 2), xlen = le(h + 30, 2), clen = le(h + 32, 2);
    const uint64_t disk = le(h + 34, 2);
    z.header_offset = le(h + 42, 4);
    if (d.size - pos - kCentralLen < nlen + xlen + clen)
      fail("{}: corrupt zip archive (central directory record {} runs past the directory)", name, k);
    z.name.assign(reinterpret_cast<const char*>(h + kCentralLen), static_cast<size_t>(nlen));
    const std::string where = fmt::format("{}: zip entry '{}'", name, printable(z.name));
    if (z.name.empty()) fail("{}: corrupt zip archive (entry {} has no name)", name, k);
    apply_zip64_extra(h + kCentralLen + nlen, xlen, z, where);
    if (disk != 0 && disk != 0xFFFF) fail("{}: lies on another disk (split archives are not supported)", where);
    pos += kCentralLen + nlen + xlen + clen;

    // The local header must lie before the central directory and agree with it.
    if (z.header_offset > d.offset || d.offset - z.header_offset < kLocalLen + nlen)
      fail("{}: local header at {} lies outside the entry area", where, z.header_offset);
    source_->read(z.header_offset, kLocalLen + nlen, local.data());
    const uint8_t* l = local.data();
    if (le(l, 4) != kLocalSig) fail("{}: bad local header signature at offset {}", where, z.header_offset);
    if (le(l + 8, 2) != z.method || le(l + 26, 2) != nlen ||
        std::memcmp(l + kLocalLen, z.name.data(), static_cast<size_t>(nlen)) != 0)
      fail("{}: local header disagrees with the central directory (name or method)", where);
    if (!(le(l + 6, 2) & 8)) {  // no data descriptor: the local header carries CRC and sizes
      const uint64_t lcrc = le(l + 14, 4), lcsize = le(l + 18, 4), lsize = le(l + 22, 4);
      if (lcrc != z.crc32 || (lcsize != kSat32 && lcsize != z.compressed_size) || (lsize != kSat32 && lsize != z.size))
        fail("{}: local header disagrees with the central directory (CRC or sizes)", where);
    }
    z.data_offset = z.header_offset + kLocalLen + nlen + le(l + 28, 2);
    if (z.data_offset > d.offset || z.compressed_size > d.offset - z.data_offset)
      fail("{}: data ({} bytes at offset {}) runs into the central directory or past the file", where,
           z.compressed_size, z.data_offset);
    if (z.method == 0 && z.compressed_size != z.size)
      fail("{}: stored entry with different compressed ({}) and uncompressed ({}) sizes", where, z.compressed_size,
           z.size);
    entries_.push_back(std::move(z));
  }

  // No two entries may share bytes (a zip bomb reuses one compressed stream).
  std::vector<size_t> order(entries_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return entries_[a].header_offset < entries_[b].header_offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const ZipEntry& a = entries_[order[i - 1]];
    const ZipEntry& b = entries_[order[i]];
    if (b.header_offset < a.data_offset + a.compressed_size)
      fail("{}: zip entries '{}' and '{}' overlap (bytes {}-{} and {}-): the archive is corrupt or hostile", name,
           printable(a.name), printable(b.name), a.header_offset, a.data_offset + a.compressed_size, b.header_offset);
  }
  by_name_ = order;
  std::sort(by_name_.begin(), by_name_.end(), [&](size_t a, size_t b) { return entries_[a].name < entries_[b].name; });
  for (size_t i = 1; i < by_name_.size(); ++i)
    if (entries_[by_name_[i]].name == entries_[by_name_[i - 1]].name)
      fail("{}: zip entry '{}' appears twice", name, printable(entries_[by_name_[i]].name));
}

const ZipEntry* ZipArchive::find(std::string_view entry_name) const {
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), entry_name,
                             [&](size_t i, std::string_view n) { return entries_[i].name < n; });
  if (it == by_name_.end() || entries_[*it].name != entry_name) return nullptr;
  return &entries_[*it];
}

std::vector<uint8_t> ZipArchive::read(const ZipEntry& z, uint64_t max_size) const {
  if (z.size > max_size)
    fail("{}: zip entry '{}' holds {} bytes, more than the {} allowed for it", name(), printable(z.name), z.size,
         max_size);
  if (z.method == 8 && (z.size > z.compressed_size * 1032 + 1024 || z.size > limits_.max_inflated_entry_bytes))
    fail("{}: zip entry '{}' claims {} bytes from {} compressed (beyond deflate's ratio or the limit of {})", name(),
         printable(z.name), z.size, z.compressed_size, limits_.max_inflated_entry_bytes);
  std::vector<uint8_t> out(static_cast<size_t>(z.size));
  read_into(z, out.data(), out.size());
  return out;
}

void ZipArchive::read_into(const ZipEntry& z, void* dst, uint64_t dst_size) const {
  const std::string where = fmt::format("{}: zip entry '{}'", name(), printable(z.name));
  if (dst_size != z.size) fail("{}: holds {} bytes, the reader expected {}", where, z.size, dst_size);
  if (z.flags & 0x41) fail("{}: is encrypted (not supported)", where);
  if (z.method == 0) {
    source_->read(z.data_offset, z.size, dst);
  } else if (z.method == 8) {
    if (z.size > z.compressed_size * 1032 + 1024 || z.size > limits_.max_inflated_entry_bytes)
      fail("{}: claims {} bytes from {} compressed (beyond deflate's ratio or the limit of {})", where, z.size,
           z.compressed_size, limits_.max_inflated_entry_bytes);
    z_stream s{};
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) fail("{}: zlib inflateInit failed", where);
    std::vector<uint8_t> in(static_cast<size_t>(std::min<uint64_t>(z.compressed_size, 1u << 18)));
    uint64_t in_done = 0, out_done = 0;
    auto* out = static_cast<uint8_t*>(dst);
    int rc = Z_OK;
    bool stalled = false;
    try {
      while (rc == Z_OK) {
        if (s.avail_in == 0 && in_done < z.compressed_size) {
          const uint64_t k = std::min<uint64_t>(in.size(), z.compressed_size - in_done);
          source_->read(z.data_offset + in_done, k, in.data());
          s.next_in = in.data();
          s.avail_in = static_cast<uInt>(k);
          in_done += k;
        }
        if (s.avail_out == 0 && out_done < z.size) {
          const uint64_t k = std::min<uint64_t>(1u << 30, z.size - out_done);
          s.next_out = out + out_done;
          s.avail_out = static_cast<uInt>(k);
          out_done += k;
        }
        const uInt before_in = s.avail_in, before_out = s.avail_out;
        rc = inflate(&s, Z_NO_FLUSH);
        if (rc == Z_BUF_ERROR || (rc == Z_OK && before_in == s.avail_in && before_out == s.avail_out)) {
          stalled = true;
          break;
        }
      }
    } catch (...) {
      inflateEnd(&s);
      throw;
    }
    const uint64_t produced = s.total_out, left_in = s.avail_in + (z.compressed_size - in_done);
    inflateEnd(&s);
    if (rc != Z_STREAM_END)
      fail("{}: deflate data is damaged, truncated or inflates past its declared {} bytes{}", where, z.size,
           stalled ? "" : fmt::format(" (zlib error {})", rc));
    if (produced != z.size) fail("{}: inflated to {} bytes, the directory says {}", where, produced, z.size);
    if (left_in != 0) fail("{}: {} bytes of compressed data follow the end of the deflate stream", where, left_in);
  } else {
    fail("{}: compression method {} is not supported (only stored and deflate)", where, z.method);
  }
  if (limits_.verify_crc) crc_check(z, dst, z.size, where);
}

}  // namespace semcodec
