#include "data/hdf5_checked.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <unordered_map>

#include "util/error.h"

namespace semcodec {

namespace {

constexpr const char* kDescriptorTag = "semcodec.vlen-descriptor";

// Closes an HDF5 id with its closer at scope exit.
struct Owned {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Owned() {
    if (id >= 0) close(id);
  }
};

uint64_t load_le(const unsigned char* p, unsigned bytes) {
  uint64_t v = 0;
  for (unsigned i = bytes; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t& out) { return __builtin_mul_overflow(a, b, &out); }

std::string dims_str(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (size_t k = 0; k < dims.size(); ++k) s += (k ? ", " : "") + std::to_string(dims[k]);
  return s + "]";
}

// The soft conversion from a variable-length string (as stored in the file) to
// an opaque type of the same size tagged kDescriptorTag: the bytes stay as they
// are, so a read returns the raw descriptors and libhdf5 never opens the heap.
herr_t descriptor_conversion(hid_t src, hid_t dst, H5T_cdata_t* cdata, size_t, size_t, size_t, void*, void*, hid_t) {
  switch (cdata->command) {
    case H5T_CONV_INIT: {
      if (H5Tis_variable_str(src) <= 0 || H5Tget_class(dst) != H5T_OPAQUE) return -1;
      char* tag = H5Tget_tag(dst);
      const bool ours = tag && std::strcmp(tag, kDescriptorTag) == 0;
      if (tag) H5free_memory(tag);
      if (!ours || H5Tget_size(src) != H5Tget_size(dst)) return -1;
      cdata->need_bkg = H5T_BKG_NO;
      return 0;
    }
    case H5T_CONV_CONV:
    case H5T_CONV_FREE:
      return 0;
  }
  return -1;
}

void register_descriptor_conversion() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    Owned vs{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(vs.id, H5T_VARIABLE);
    Owned op{H5Tcreate(H5T_OPAQUE, 16), H5Tclose};
    H5Tset_tag(op.id, kDescriptorTag);
    ok = H5Tregister(H5T_PERS_SOFT, "semcodec_vlen_descriptor", vs.id, op.id, descriptor_conversion) >= 0;
    H5Eclear2(H5E_DEFAULT);
  });
  if (!ok) fail("HDF5: cannot register the variable-length string reader");
}

Owned descriptor_type(size_t size) {
  Owned t{H5Tcreate(H5T_OPAQUE, size), H5Tclose};
  H5Tset_tag(t.id, kDescriptorTag);
  return t;
}

}  // namespace

// ---------------------------------------------------------------- global heap

struct HdfFile::Heap {
  int fd = -1;
  struct Collection {
    std::vector<unsigned char> bytes;
    std::unordered_map<uint32_t, std::pair<uint64_t, uint64_t>> objects;  // index -> (offset, size)
  };
  std::map<uint64_t, Collection> collections;  // by file offset
  std::map<uint64_t, uint64_t> ranges;         // file offset -> end, to refuse overlapping collections
  ~Heap() {
    if (fd >= 0) ::close(fd);
  }
  // The collections are kept for one attribute or dataset read only.
  struct Scope {
    Heap& heap;
    ~Scope() {
      heap.collections.clear();
      heap.ranges.clear();
    }
  };
};

HdfFile::HdfFile(hid_t file, std::string path, const HdfLimits& limits)
    : path_(std::move(path)), limits_(limits), heap_(std::make_unique<Heap>()) {
  register_descriptor_conversion();
  heap_->fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (heap_->fd < 0) fail("{}: cannot open: {}", path_, std::strerror(errno));
  struct stat st {};
  if (::fstat(heap_->fd, &st) != 0) fail("{}: cannot stat: {}", path_, std::strerror(errno));
  file_size_ = static_cast<uint64_t>(st.st_size);
  Owned fcpl{H5Fget_create_plist(file), H5Pclose};
  size_t sa = 0, ss = 0;
  hsize_t ub = 0;
  if (fcpl.id < 0 || H5Pget_sizes(fcpl.id, &sa, &ss) < 0 || H5Pget_userblock(fcpl.id, &ub) < 0)
    fail("{}: cannot read the file's address sizes", path_);
  if ((sa != 2 && sa != 4 && sa != 8) || (ss != 2 && ss != 4 && ss != 8))
    fail("{}: unsupported HDF5 address/length sizes {}/{}", path_, sa, ss);
  sizeof_addr_ = static_cast<unsigned>(sa);
  sizeof_size_ = static_cast<unsigned>(ss);
  base_ = ub;
}

HdfFile::~HdfFile() = default;

uint64_t HdfFile::on_disk_element_bytes(hid_t type) const {
  // A variable-length element is stored as (length, heap address, index).
  if (H5Tis_variable_str(type) > 0 || H5Tget_class(type) == H5T_VLEN) return 4 + sizeof_addr_ + 4;
  return H5Tget_size(type);
}

uint64_t HdfFile::checked_elements(hid_t dset, const std::string& name) const {
  Owned space{H5Dget_space(dset), H5Sclose};
  const int rank = space.id < 0 ? -1 : H5Sget_simple_extent_ndims(space.id);
  if (rank < 0 || rank > 32) fail("{}: cannot read the shape of '{}'", path_, name);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space.id, dims.data(), nullptr) < 0)
    fail("{}: cannot read the shape of '{}'", path_, name);
  Owned type{H5Dget_type(dset), H5Tclose};
  if (type.id < 0) fail("{}: cannot read the type of '{}'", path_, name);
  const uint64_t elem = on_disk_element_bytes(type.id);
  if (elem == 0) fail("{}: '{}' has a zero-sized element type", path_, name);
  uint64_t n = 1, logical = 0;
  for (hsize_t d : dims)
    if (mul_overflows(n, d, n)) fail("{}: '{}' declares {} elements, which overflows", path_, name, dims_str(dims));
  if (mul_overflows(n, elem, logical) || logical > (uint64_t{1} << 62))
    fail("{}: '{}' declares {} elements of {} bytes, which overflows", path_, name, dims_str(dims), elem);
  if (n == 0) return 0;

  Owned dcpl{H5Dget_create_plist(dset), H5Pclose};
  if (dcpl.id < 0) fail("{}: cannot read the storage properties of '{}'", path_, name);
  const H5D_layout_t layout = H5Pget_layout(dcpl.id);
  const int nfilters = layout == H5D_CHUNKED ? H5Pget_nfilters(dcpl.id) : 0;
  if (nfilters < 0) fail("{}: cannot read the filters of '{}'", path_, name);
  // Only the filters h5py and this writer use; libhdf5's others (n-bit,
  // scale-offset, szip) are more code trusted with the file's bytes.
  for (int k = 0; k < nfilters; ++k) {
    unsigned flags = 0, cd[8] = {0};
    size_t ncd = 8;
    char fname[64] = {0};
    const H5Z_filter_t id = H5Pget_filter2(dcpl.id, static_cast<unsigned>(k), &flags, &ncd, cd, sizeof fname, fname, nullptr);
    if (id != H5Z_FILTER_DEFLATE && id != H5Z_FILTER_SHUFFLE && id != H5Z_FILTER_FLETCHER32)
      fail("{}: '{}' uses HDF5 filter {}, which this reader does not accept (only gzip, shuffle and fletcher32)", path_,
           name, static_cast<int>(id));
  }
  const uint64_t storage = H5Dget_storage_size(dset);
  if (storage > file_size_)
    fail("{}: '{}' claims {} bytes of storage but the file has {} (damaged file)", path_, name, storage, file_size_);
  uint64_t limit = storage;
  if (nfilters > 0 && mul_overflows(storage, limits_.max_inflation, limit)) limit = UINT64_MAX;
  if (logical > limit)
    fail("{}: '{}' declares {} elements of {} bytes ({} bytes) but the file stores {} bytes for it{} "
         "(truncated or damaged file)",
         path_, name, dims_str(dims), elem, logical, storage,
         nfilters > 0 ? fmt::format(", which inflates to at most {}", limit) : std::string());
  if (layout == H5D_CHUNKED) {
    // libhdf5 allocates a whole chunk to read any part of it.
    std::vector<hsize_t> chunk(static_cast<size_t>(rank) + 1, 0);
    if (H5Pget_chunk(dcpl.id, rank, chunk.data()) != rank)
      fail("{}: '{}' has a chunk shape of another rank than its own", path_, name);
    chunk.resize(static_cast<size_t>(rank));
    uint64_t cbytes = elem;
    for (hsize_t c : chunk)
      if (c == 0 || mul_overflows(cbytes, c, cbytes)) fail("{}: '{}' has an invalid chunk shape {}", path_, name, dims_str(chunk));
    if (cbytes > limit)
      fail("{}: '{}' has chunks of {} bytes ({}) but the file stores {} bytes for it (damaged file)", path_, name, cbytes,
           dims_str(chunk), storage);
  }
  return n;
}

std::string HdfFile::string_from_descriptor(const unsigned char* d, const std::string& what) {
  const uint64_t len = load_le(d, 4);
  const uint64_t addr = load_le(d + 4, sizeof_addr_);
  const uint64_t index = load_le(d + 4 + sizeof_addr_, 4);
  if (len == 0) return {};
  if (len > limits_.max_string_bytes)
    fail("{}: {} is {} bytes long, more than the limit of {}", path_, what, len, limits_.max_string_bytes);
  const unsigned header = 8 + sizeof_size_;  // "GCOL", version, 3 reserved, collection size
  if (addr >= file_size_ || base_ > file_size_ - addr || file_size_ - addr - base_ < header)
    fail("{}: {} points to global heap address {}, outside the file (damaged file)", path_, what, addr);
  const uint64_t at = base_ + addr;
  auto it = heap_->collections.find(at);
  if (it == heap_->collections.end()) {
    unsigned char h[16];
    if (::pread(heap_->fd, h, header, static_cast<off_t>(at)) != static_cast<ssize_t>(header))
      fail("{}: cannot read the global heap at {}", path_, addr);
    if (std::memcmp(h, "GCOL", 4) != 0 || h[4] != 1)
      fail("{}: {} points to address {}, which holds no global heap collection (damaged file)", path_, what, addr);
    const uint64_t size = load_le(h + 8, sizeof_size_);
    if (size < header || size > file_size_ - at)
      fail("{}: the global heap collection at {} claims {} bytes, outside the file (damaged file)", path_, addr, size);
    if (size > limits_.max_heap_collection_bytes)
      fail("{}: the global heap collection at {} claims {} bytes, more than the limit of {}", path_, addr, size,
           limits_.max_heap_collection_bytes);
    // Collections never share bytes; overlapping ones would let a file make us read it many times over.
    auto next = heap_->ranges.lower_bound(at);
    if (next != heap_->ranges.end() && next->first < at + size)
      fail("{}: global heap collections at {} and {} overlap (damaged file)", path_, addr, next->first - base_);
    if (next != heap_->ranges.begin() && std::prev(next)->second > at)
      fail("{}: global heap collections at {} and {} overlap (damaged file)", path_, std::prev(next)->first - base_, addr);
    Heap::Collection c;
    c.bytes.resize(size);
    for (uint64_t done = 0; done < size;) {
      const ssize_t got = ::pread(heap_->fd, c.bytes.data() + done, size - done, static_cast<off_t>(at + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) fail("{}: cannot read the global heap collection at {}", path_, addr);
      done += static_cast<uint64_t>(got);
    }
    // Objects: index (2), reference count (2), reserved (4), size, data padded to 8 bytes. Index 0 is the free space.
    const uint64_t obj_header = 8 + sizeof_size_;
    for (uint64_t p = header; p + obj_header <= size;) {
      const uint32_t idx = static_cast<uint32_t>(load_le(c.bytes.data() + p, 2));
      const uint64_t osize = load_le(c.bytes.data() + p + 8, sizeof_size_);
      if (idx == 0) break;
      const uint64_t data = p + obj_header;
      if (osize > size - data)
        fail("{}: object {} of the global heap collection at {} overruns it (damaged file)", path_, idx, addr);
      if (!c.objects.emplace(idx, std::make_pair(data, osize)).second)
        fail("{}: the global heap collection at {} holds object {} twice (damaged file)", path_, addr, idx);
      const uint64_t padded = (osize + 7) / 8 * 8;
      if (padded >= size - data) break;
      p = data + padded;
    }
    heap_->ranges.emplace(at, at + size);
    it = heap_->collections.emplace(at, std::move(c)).first;
  }
  const auto obj = it->second.objects.find(static_cast<uint32_t>(index));
  if (index > 0xFFFF || obj == it->second.objects.end())
    fail("{}: {} names object {} of the global heap collection at {}, which has no such object (damaged file)", path_,
         what, index, addr);
  if (len > obj->second.second)
    fail("{}: {} is {} bytes long but its global heap object holds {} (damaged file)", path_, what, len,
         obj->second.second);
  return std::string(reinterpret_cast<const char*>(it->second.bytes.data() + obj->second.first), len);
}

std::string HdfFile::read_string_attribute(hid_t attr, const std::string& name) {
  Owned type{H5Aget_type(attr), H5Tclose};
  if (type.id < 0 || H5Tget_class(type.id) != H5T_STRING) fail("{}: attribute '{}' is not a string", path_, name);
  Owned space{H5Aget_space(attr), H5Sclose};
  if (space.id < 0 || H5Sget_simple_extent_npoints(space.id) != 1) fail("{}: attribute '{}' is not a scalar", path_, name);
  if (H5Tis_variable_str(type.id) > 0) {
    const size_t dsize = 4 + sizeof_addr_ + 4;
    Owned mtype = descriptor_type(dsize);
    unsigned char d[20] = {0};
    if (H5Aread(attr, mtype.id, d) < 0) fail("{}: cannot read attribute '{}'", path_, name);
    const Heap::Scope scope{*heap_};
    return string_from_descriptor(d, "attribute '" + name + "'");
  }
  const size_t n = H5Tget_size(type.id);
  if (n == 0 || n > limits_.max_string_bytes) fail("{}: attribute '{}' has an implausible size {}", path_, name, n);
  Owned mtype{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(mtype.id, n);
  H5Tset_strpad(mtype.id, H5T_STR_NULLPAD);
  H5Tset_cset(mtype.id, H5Tget_cset(type.id));
  std::string buf(n, '\0');
  if (H5Aread(attr, mtype.id, buf.data()) < 0) fail("{}: cannot read attribute '{}'", path_, name);
  buf.resize(strnlen(buf.data(), n));
  return buf;
}

std::vector<std::string> HdfFile::read_string_dataset(hid_t dset, const std::string& name) {
  Owned space{H5Dget_space(dset), H5Sclose};
  if (space.id < 0 || H5Sget_simple_extent_ndims(space.id) != 1)
    fail("{}: dataset '{}' must be one-dimensional", path_, name);
  Owned type{H5Dget_type(dset), H5Tclose};
  if (type.id < 0 || H5Tget_class(type.id) != H5T_STRING) fail("{}: dataset '{}' does not hold strings", path_, name);
  const uint64_t n = checked_elements(dset, name);
  std::vector<std::string> out;
  if (n == 0) return out;
  const bool vlen = H5Tis_variable_str(type.id) > 0;
  const uint64_t width = vlen ? 4 + sizeof_addr_ + 4 : H5Tget_size(type.id);
  if (!vlen && (width == 0 || width > limits_.max_string_bytes))
    fail("{}: dataset '{}' has implausible string size {}", path_, name, width);
  Owned mtype = vlen ? descriptor_type(width) : Owned{H5Tcopy(H5T_C_S1), H5Tclose};
  if (!vlen) {
    H5Tset_size(mtype.id, width);
    H5Tset_strpad(mtype.id, H5T_STR_NULLPAD);
    H5Tset_cset(mtype.id, H5Tget_cset(type.id));
  }
  // Blocks of at most 16 MiB of elements; `out` grows with the bytes actually read.
  const uint64_t block = std::max<uint64_t>(1, (16u << 20) / width);
  std::vector<unsigned char> buf;
  uint64_t total = 0;
  const Heap::Scope scope{*heap_};
  // Strings of a variable-length dataset each come from their own heap object, so together they fit the file.
  const uint64_t max_total = vlen ? std::min(limits_.max_strings_bytes, file_size_) : limits_.max_strings_bytes;
  for (uint64_t start = 0; start < n; start += block) {
    const hsize_t count = std::min(block, n - start), off = start;
    buf.assign(count * width, 0);
    Owned mspace{H5Screate_simple(1, &count, nullptr), H5Sclose};
    if (H5Sselect_hyperslab(space.id, H5S_SELECT_SET, &off, nullptr, &count, nullptr) < 0 ||
        H5Dread(dset, mtype.id, mspace.id, space.id, H5P_DEFAULT, buf.data()) < 0)
      fail("{}: cannot read dataset '{}'", path_, name);
    for (uint64_t i = 0; i < count; ++i) {
      const unsigned char* e = buf.data() + i * width;
      if (vlen) {
        out.push_back(string_from_descriptor(e, fmt::format("string {} of dataset '{}'", start + i, name)));
      } else {
        const char* s = reinterpret_cast<const char*>(e);
        out.emplace_back(s, strnlen(s, width));
      }
      total += out.back().size();
      if (total > max_total)
        fail("{}: the strings of dataset '{}' add up to more than {} bytes{}", path_, name, max_total,
             vlen && max_total == file_size_ ? " (the size of the file: damaged file)" : "");
    }
  }
  return out;
}

// ---------------------------------------------------------------- probe

#if defined(__SANITIZE_ADDRESS__)
#define SEMCODEC_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SEMCODEC_UNDER_ASAN 1
#endif
#endif
#ifdef SEMCODEC_UNDER_ASAN
extern "C" void __sanitizer_set_death_callback(void (*callback)(void));
#endif

namespace {

uint64_t address_space_in_use() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages = 0;
  statm >> pages;
  return pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

[[noreturn]] void child_exit(int fd, int code, const std::string& message) {
  for (size_t done = 0; done < message.size();) {
    const ssize_t n = ::write(fd, message.data() + done, message.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::_exit(code);
}

}  // namespace

void probe_hdf5_file(const std::string& path, const std::function<void()>& probe, const HdfProbeLimits& limits) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail("{}: cannot create a pipe to check the file: {}", path, std::strerror(errno));
  const uint64_t in_use = address_space_in_use();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    fail("{}: cannot start a process to check the file: {}", path, std::strerror(err));
  }
  if (pid == 0) {
    ::close(fds[0]);
    // A crash must end the child, not run a handler inherited from the parent
    // (a fuzzer's would record the input as its own crash). Under
    // AddressSanitizer its handlers stay, so that its report names the crash.
#ifdef SEMCODEC_UNDER_ASAN
    __sanitizer_set_death_callback(nullptr);
    ::signal(SIGALRM, SIG_DFL);
#else
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGALRM}) ::signal(sig, SIG_DFL);
#endif
    ::alarm(static_cast<unsigned>(std::max(1, limits.timeout_s)));
#ifndef SEMCODEC_UNDER_ASAN
    if (in_use > 0) {
      const rlim_t cap = static_cast<rlim_t>(in_use + limits.extra_address_space);
      rlimit r{cap, cap};
      ::setrlimit(RLIMIT_AS, &r);
    }
#endif
    try {
      probe();
    } catch (const Error& e) {
      child_exit(fds[1], 1, e.what());
    } catch (const std::bad_alloc&) {
      child_exit(fds[1], 3, "");
    } catch (const std::exception& e) {
      child_exit(fds[1], 2, e.what());
    } catch (...) {
      child_exit(fds[1], 2, "");
    }
    child_exit(fds[1], 0, "");
  }
  ::close(fds[1]);
  std::string message;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    message.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail("{}: lost the process that checked the file: {}", path, std::strerror(errno));
  }
  if (WIFEXITED(status)) {
    switch (WEXITSTATUS(status)) {
      case 0: return;
      case 1: throw Error(message);
      case 2: fail("{}: damaged file: reading its metadata failed in the checking process ({})", path, message);
      case 3:
        fail("{}: damaged file: reading its metadata needs more than {} MiB of memory", path,
             limits.extra_address_space >> 20);
      default:
        fail("{}: damaged file: reading its metadata failed in the checking process (exit code {})", path,
             WEXITSTATUS(status));
    }
  }
  const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  if (sig == SIGALRM)
    fail("{}: damaged file: libhdf5 did not finish reading its metadata within {} s", path, limits.timeout_s);
  fail("{}: damaged file: libhdf5 crashed (signal {}, {}) while reading its metadata", path, sig, strsignal(sig));
}

}  // namespace semcodec
