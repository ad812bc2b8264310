#include "util/jsonl.h"

#include <nlohmann/json.hpp>

#include "util/atomic_file.h"
#include "util/error.h"

namespace semcodec {

int64_t truncate_metrics_log(const std::string& path, int64_t epochs) {
  if (!file_exists(path)) return 0;
  const std::string text = read_file(path);
  std::string kept;
  int64_t records = 0;
  size_t start = 0;
  for (size_t end = text.find('\n'); end != std::string::npos; start = end + 1, end = text.find('\n', start)) {
    const std::string_view line(text.data() + start, end - start);
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("epoch") || !j["epoch"].is_number_integer()) continue;
    if (j["epoch"].get<int64_t>() > epochs) continue;
    kept.append(line).push_back('\n');
    ++records;
  }
  if (kept.size() != text.size()) write_file_atomic(path, kept);
  return records;
}

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
