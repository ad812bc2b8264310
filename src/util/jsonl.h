// Appends one JSON object per line to a metrics log; each line is flushed so a
// killed run leaves every completed record readable.
#pragma once
#include <cstdint>
#include <fstream>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace semcodec {

// Before a run resumes from the checkpoint written after epoch `epochs`:
// keeps the log's records of epochs 1..epochs (records carry "epoch") and
// drops the rest, including a line torn by a kill, atomically. Training
// writes an epoch's record after that epoch's checkpoints, so the log never
// lists an epoch the checkpoint does not hold; this removes one it holds twice
// or half. Returns how many records were kept; a missing file keeps none.
int64_t truncate_metrics_log(const std::string& path, int64_t epochs);

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
