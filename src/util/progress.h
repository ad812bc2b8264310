// A one-line progress bar with rate and ETA on stderr. Redraws at most a few
// times per second; prints a plain final line when stderr is not a terminal.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace semcodec {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "it", bool enabled = true);
  ~ProgressBar();
  void advance(int64_t n = 1);
  void set_postfix(std::string text);
  void finish();
  double rate() const;  // units per second so far

 private:
  void draw(bool final_line);
  std::string label_, unit_, postfix_;
  int64_t total_, done_ = 0;
  bool enabled_, tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);

}  // namespace semcodec
