// Outputs appear complete or not at all: everything is written to a temporary
// name beside the target and renamed over it once fully written and flushed.
#pragma once
#include <string>
#include <string_view>

namespace semcodec {

// A temporary path beside `target` ("<target>.tmp-<pid>-<n>"). If the object is
// destroyed without commit() the temporary file is removed.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::string target);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::string& temp_path() const { return temp_; }
  const std::string& target() const { return target_; }
  // fsyncs the temporary file and renames it onto the target.
  void commit();

 private:
  std::string target_, temp_;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, std::string_view bytes);
std::string read_file(const std::string& path);
// Creates the directory and its parents; fails with the path in the message.
void ensure_dir(const std::string& path);
bool file_exists(const std::string& path);

}  // namespace semcodec
