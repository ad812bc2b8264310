// A zip reader for untrusted archives (PyTorch's torch.save / TorchScript
// files; usable for .npz too). Pure C++17 + zlib, no LibTorch.
//
// What it guarantees for any input bytes:
//   - every offset and size is checked against the bytes present before it is
//     used, and nothing is allocated from a size that was not checked first
//     (a stored entry's size is bounded by the file, an inflated one by
//     ZipLimits and by deflate's maximum ratio);
//   - entries are refused when their names repeat, when their byte ranges
//     overlap each other or the central directory, or when the local header
//     disagrees with the central directory;
//   - zip64 is read (PyTorch writes it above 4 GiB); multi-disk archives,
//     encryption and compression methods other than stored / deflate are
//     refused with a message that says so;
//   - the work is bounded: one pass over at most ZipLimits::max_entries
//     central-directory records, each checked in constant time, and the
//     entries a caller asks for are read once.
// Every error is a semcodec::Error that starts with the source's name.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace semcodec {

// Random access to the bytes of a file or of a buffer.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Copies [offset, offset + n) into `dst`; throws when the range is not
  // inside size() or the read fails.
  virtual void read(uint64_t offset, uint64_t n, void* dst) const = 0;
  // Names the source in errors (normally the path).
  virtual const std::string& name() const = 0;
};

// A regular file, read on demand (the file is not held in memory).
std::shared_ptr<const ByteSource> open_file_source(const std::string& path);
// A buffer that must outlive the source (it is not copied).
std::shared_ptr<const ByteSource> memory_source(std::string_view bytes, const std::string& name);

struct ZipLimits {
  uint64_t max_entries = 1u << 18;                  // central-directory records
  uint64_t max_directory_bytes = 64ull << 20;       // the central directory itself
  uint64_t max_inflated_entry_bytes = 4ull << 30;   // one deflated entry, once inflated
  bool verify_crc = true;                           // CRC-32 of every entry read
};

struct ZipEntry {
  std::string name;
  uint16_t method = 0;          // 0 stored, 8 deflate (others are refused on read)
  uint16_t flags = 0;
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;            // uncompressed
  uint64_t header_offset = 0;   // local header
  uint64_t data_offset = 0;     // first byte of the (compressed) data
};

class ZipArchive {
 public:
  // Reads and validates the whole directory (and every local header).
  explicit ZipArchive(std::shared_ptr<const ByteSource> source, const ZipLimits& limits = {});

  const std::string& name() const { return source_->name(); }
  // In the order of the central directory.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr when absent.
  const ZipEntry* find(std::string_view entry_name) const;

  // The entry's uncompressed bytes. Refuses an entry whose size exceeds
  // `max_size` before allocating anything.
  std::vector<uint8_t> read(const ZipEntry& entry, uint64_t max_size) const;
  // Reads the entry into `dst`, which must hold exactly entry.size bytes.
  void read_into(const ZipEntry& entry, void* dst, uint64_t dst_size) const;

 private:
  std::shared_ptr<const ByteSource> source_;
  ZipLimits limits_;
  std::vector<ZipEntry> entries_;
  std::vector<size_t> by_name_;  // indices into entries_, sorted by name
};

}  // namespace semcodec
