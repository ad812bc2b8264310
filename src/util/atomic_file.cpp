#include "util/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace semcodec {
namespace fs = std::filesystem;

namespace {
std::string temp_name(const std::string& target) {
  static std::atomic<unsigned> counter{0};
  return fmt::format("{}.tmp-{}-{}", target, ::getpid(), counter++);
}
// A failed fsync means the bytes may not be on disk: an error, not a warning.
void fsync_path(const std::string& path, const std::string& target) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  require(fd >= 0, "{}: cannot open {} to flush it: {}", target, path, std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  require(rc == 0 || err == EINVAL, "{}: fsync of {} failed: {}", target, path, std::strerror(err));
}
}  // namespace

AtomicOutput::AtomicOutput(std::string target) : target_(std::move(target)), temp_(temp_name(target_)) {
  fs::path parent = fs::path(target_).parent_path();
  if (!parent.empty()) ensure_dir(parent.string());
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicOutput::commit() {
  require(fs::exists(temp_), "{}: nothing was written (temporary file {} is missing)", target_, temp_);
  fsync_path(temp_, target_);
  if (std::rename(temp_.c_str(), target_.c_str()) != 0)
    fail("{}: cannot rename {} onto it: {}", target_, temp_, std::strerror(errno));
  committed_ = true;
  // The rename itself is durable once the directory is flushed.
  const fs::path parent = fs::path(target_).parent_path();
  fsync_path(parent.empty() ? std::string(".") : parent.string(), target_);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicOutput out(path);
  {
    std::ofstream f(out.temp_path(), std::ios::binary | std::ios::trunc);
    require(f.good(), "{}: cannot open for writing", out.temp_path());
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.flush();
    require(f.good(), "{}: write failed (disk full?)", out.temp_path());
  }
  out.commit();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  require(f.good(), "{}: cannot open for reading (missing or unreadable)", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  require(!f.bad(), "{}: read failed", path);
  return ss.str();
}

void ensure_dir(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  fs::create_directories(path, ec);
  require(!ec && fs::is_directory(path), "{}: cannot create directory: {}", path, ec.message());
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

}  // namespace semcodec
