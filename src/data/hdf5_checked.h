// Reading an untrusted HDF5 file without letting its sizes drive allocations,
// and without libhdf5's global-heap code (docs/feature-store.md, "What
// remains trusted").
//
// libhdf5 1.10 trusts the global heap that holds variable-length strings: a
// few changed bytes there make H5HG_read copy past its buffer, allocate what
// a corrupt length says or dereference a bad index. So variable-length
// strings are never converted by libhdf5 here. A conversion path registered
// with libhdf5 turns them into their raw on-disk descriptors (length, heap
// collection address, object index) and this module reads the heap
// collections itself: each collection is read once, its object table is
// checked against its own size and the file's, and every string is checked
// against the object it names and the configured limits.
//
// The other checks: a dataset's declared size (dims x element size) must fit
// the bytes the file stores for it (H5Dget_storage_size; at most
// HdfLimits::max_inflation times that when a filter such as gzip is on), and a
// chunk must not be larger than the file could inflate to, before any buffer
// is sized from either.
//
// What is left is libhdf5's own parsing of the file's metadata (superblock,
// object headers and their messages, B-trees, local heaps), which no API lets
// a caller check first. probe_hdf5_file() runs that parsing in a child
// process before the caller repeats it, so that a crash, hang or huge
// allocation inside libhdf5 becomes an error instead.
//
// Every failure is a semcodec::Error that starts with the file's path.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace semcodec {

struct HdfLimits {
  uint64_t max_string_bytes = 1u << 20;          // one string
  uint64_t max_strings_bytes = 1ull << 32;       // all strings of one dataset, together
  uint64_t max_heap_collection_bytes = 64u << 20;  // one global heap collection
  uint64_t max_inflation = 1032;                 // logical bytes per stored byte of a filtered dataset (deflate's limit)
};

// An open file's facts that the checks need, and the reader of its global
// heap (collections cached, so reading many strings reads each collection once).
class HdfFile {
 public:
  // `file` is an open HDF5 file id (not owned); `path` is where it lives.
  HdfFile(hid_t file, std::string path, const HdfLimits& limits = {});
  ~HdfFile();
  HdfFile(const HdfFile&) = delete;
  HdfFile& operator=(const HdfFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  const HdfLimits& limits() const { return limits_; }

  // The number of elements of `dset` after checking that they fit the bytes
  // stored for it (and that its chunks are of a size the file can hold).
  uint64_t checked_elements(hid_t dset, const std::string& name) const;

  // A scalar string attribute (fixed or variable length).
  std::string read_string_attribute(hid_t attr, const std::string& name);
  // A 1-D string dataset (fixed or variable length), read in bounded blocks.
  std::vector<std::string> read_string_dataset(hid_t dset, const std::string& name);

 private:
  struct Heap;
  std::string string_from_descriptor(const unsigned char* d, const std::string& what);
  uint64_t on_disk_element_bytes(hid_t type) const;

  std::string path_;
  HdfLimits limits_;
  uint64_t file_size_ = 0, base_ = 0;
  unsigned sizeof_addr_ = 8, sizeof_size_ = 8;
  std::unique_ptr<Heap> heap_;
};

struct HdfProbeLimits {
  int timeout_s = 120;                      // the child is killed after this long
  uint64_t extra_address_space = 4ull << 30;  // above the parent's, for the child (not under AddressSanitizer)
};

// Runs `probe` (reads of the file at `path` through libhdf5) in a forked
// child process and returns once it finished cleanly; the caller then does
// the same reads itself, which libhdf5 does deterministically. An Error thrown
// by `probe` is thrown again here with its message; a crash, a timeout or an
// allocation beyond the limit in the child becomes an Error naming the file.
// The child calls only libhdf5 and this library (no LibTorch, no threads) and
// leaves with _exit, so the parent's open files and buffers are not touched.
void probe_hdf5_file(const std::string& path, const std::function<void()>& probe, const HdfProbeLimits& limits = {});

}  // namespace semcodec
