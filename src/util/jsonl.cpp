#include "util/jsonl.h"

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace semcodec {

JsonlLog::JsonlLog(const std::string& path, bool append)
    : path_(path), out_(path, append ? std::ios::app : std::ios::trunc) {
  require(out_.good(), "{}: cannot open metrics log for writing", path);
}

void JsonlLog::write(const nlohmann::json& record) {
  if (!out_.is_open()) return;
  out_ << record.dump() << '\n';
  out_.flush();
  require(out_.good(), "{}: write failed", path_);
}

}  // namespace semcodec
