#include "util/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>
#include <string>

#include "util/atomic_file.h"
#include "util/error.h"

namespace semcodec {

namespace fs = std::filesystem;

RunDirectoryLock::RunDirectoryLock(const std::string& dir) {
  ensure_dir(dir);
  const std::string path = (fs::path(dir) / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  require(fd_ >= 0, "{}: cannot open its lock file {}: {}", dir, path, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {0};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      fail("{}: another semcodec process{} is writing this run directory; wait for it or stop it first", dir,
           n > 0 ? fmt::format(" (pid {})", std::string(buf, static_cast<size_t>(n))) : std::string());
    fail("{}: cannot lock {}: {}", dir, path, std::strerror(err));
  }
  // The holder's pid, for the message a second writer gets.
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

RunDirectoryLock::~RunDirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

int remove_stale_temporaries(const std::string& dir) {
  static const std::regex temp_name(R"(.+\.tmp-[0-9]+-[0-9]+)");
  int removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec) || !std::regex_match(e.path().filename().string(), temp_name)) continue;
    if (fs::remove(e.path(), ec)) ++removed;
  }
  return removed;
}

}  // namespace semcodec
