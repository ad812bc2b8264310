// Appends one JSON object per line to a metrics log; each line is flushed so a
// killed run leaves every completed record readable.
#pragma once
#include <fstream>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace semcodec {

class JsonlLog {
 public:
  JsonlLog() = default;
  // append=false truncates the file (a fresh run), true continues it (resume).
  JsonlLog(const std::string& path, bool append);
  void write(const nlohmann::json& record);
  bool is_open() const { return out_.is_open(); }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace semcodec
