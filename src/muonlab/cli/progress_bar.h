// A one-line progress bar on stderr, redrawn at most ten times a second, and
// only when stderr is a terminal (logs and pipes get the summary alone).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace muonlab::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  // `detail` is printed after the percentage, e.g. "12.3 MB/s, 1.2M tokens".
  void update(uint64_t done, uint64_t total, const std::string& detail);
  void finish();
  // Whether the bar is drawn (stderr is a terminal); callers log plain lines otherwise.
  bool live() const { return enabled_; }

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace muonlab::cli
