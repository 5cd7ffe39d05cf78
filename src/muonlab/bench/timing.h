// Wall-clock timing of device work for benchmarks: warm-up runs, then
// repeated runs each closed by a device synchronization.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <vector>

namespace muonlab::bench {

// The middle value (the mean of the two middle ones for an even count); 0
// for none.
double median_of_values(std::vector<double> values);

// A sample of repeated rounds summarized as the benches report it: the
// median with a 95% percentile-bootstrap interval of it, and the range.
// Fails on an empty sample.
struct RoundsSummary {
  double median = 0, low = 0, high = 0, min = 0, max = 0;
};
RoundsSummary summarize_rounds(const std::vector<double>& values);

struct Timing {
  std::vector<double> seconds;  // one per timed run
  double median() const;
  double min() const;
};

// Seconds from `start` to `stop`.
inline double seconds_between(std::chrono::steady_clock::time_point start,
                              std::chrono::steady_clock::time_point stop) {
  return std::chrono::duration<double>(stop - start).count();
}

// Waits for queued work on `device` (no-op on CPU).
void synchronize(const torch::Device& device);

// What the kernel charged this process between two points: minor page
// faults (memory the allocator got fresh from the kernel and touched) and
// system CPU time, from getrusage.
struct ProcessUsage {
  long minor_faults = 0;
  double system_seconds = 0;
  static ProcessUsage now();
  ProcessUsage operator-(const ProcessUsage& earlier) const;
};

Timing time_runs(const std::function<void()>& run, const torch::Device& device, int warmup,
                 int reps);

}  // namespace muonlab::bench
