// One writer per run directory: a process that writes a run (train, a sweep
// cell) holds an exclusive lock on <dir>/.lock for as long as it writes. The
// kernel drops the lock when the process ends, however it ends, so a killed
// run never leaves a stale lock; a second writer gets a clear error instead
// of interleaving checkpoints and metrics with the first.
#pragma once
#include <string>

namespace semcodec {

class RunDirectoryLock {
 public:
  // Creates `dir` if needed and takes the lock; Error naming the directory
  // (and the holder's pid when known) if another process holds it.
  explicit RunDirectoryLock(const std::string& dir);
  ~RunDirectoryLock();
  RunDirectoryLock(const RunDirectoryLock&) = delete;
  RunDirectoryLock& operator=(const RunDirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

// Removes the temporary files AtomicOutput leaves when its process is killed
// ("<name>.tmp-<pid>-<n>" directly in `dir`); call it while holding the lock.
// Returns how many were removed.
int remove_stale_temporaries(const std::string& dir);

}  // namespace semcodec
