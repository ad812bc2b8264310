// Helpers shared by the tests: scratch directories, skips, errors and the committed fixtures.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <iostream>
#include <string>

#include "util/error.h"

namespace semcodec::test {

// A fresh empty directory under the system temp dir, removed at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline TempDir::TempDir(const std::string& tag) {
  static int counter = 0;
  auto base = std::filesystem::temp_directory_path() /
              ("semcodec-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  path_ = base.string();
}
inline TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// CTest reports a test case that prints this marker as skipped, not passed
// (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), even when it exits 0.
constexpr const char* kSkippedMarker = "SEMCODEC-TEST-SKIPPED:";
inline void report_skipped(const std::string& reason) { std::cout << kSkippedMarker << " " << reason << std::endl; }

// Ends a test case whose data (or hardware) is absent, reported as skipped.
// Only before the test's first assertion: CTest's skip wins over a failure.
#define SEMCODEC_SKIP(reason)                                  \
  do {                                                         \
    WARN("skipped: " << reason);                               \
    ::semcodec::test::report_skipped(std::string() + reason);  \
    return;                                                    \
  } while (false)

// The message of the semcodec::Error that `f` throws; "<no error>" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

// Path of a committed test fixture (tests/fixtures/<rel>).
inline std::string fixture_path(const std::string& rel) {
  return std::string(SEMCODEC_SOURCE_DIR) + "/tests/fixtures/" + rel;
}

}  // namespace semcodec::test
