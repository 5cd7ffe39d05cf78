#include "muonlab/bench/timing.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "muonlab/analysis/statistics.h"
#include "muonlab/core/errors.h"

namespace muonlab::bench {

double median_of_values(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

RoundsSummary summarize_rounds(const std::vector<double>& values) {
  if (values.empty()) fail("summarize_rounds: no rounds");
  RoundsSummary summary;
  summary.median = median_of_values(values);
  summary.min = *std::min_element(values.begin(), values.end());
  summary.max = *std::max_element(values.begin(), values.end());
  const auto interval =
      analysis::bootstrap_interval(static_cast<int64_t>(values.size()), [&](const std::vector<int64_t>& indices) {
        std::vector<double> resampled;
        for (const auto i : indices) resampled.push_back(values[i]);
        return median_of_values(resampled);
      });
  summary.low = interval.low;
  summary.high = interval.high;
  return summary;
}

double Timing::median() const { return median_of_values(seconds); }

double Timing::min() const {
  return seconds.empty() ? 0 : *std::min_element(seconds.begin(), seconds.end());
}

ProcessUsage ProcessUsage::now() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return {usage.ru_minflt, static_cast<double>(usage.ru_stime.tv_sec) + 1e-6 * static_cast<double>(usage.ru_stime.tv_usec)};
}

ProcessUsage ProcessUsage::operator-(const ProcessUsage& earlier) const {
  return {minor_faults - earlier.minor_faults, system_seconds - earlier.system_seconds};
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

Timing time_runs(const std::function<void()>& run, const torch::Device& device, int warmup,
                 int reps) {
  for (int i = 0; i < warmup; ++i) run();
  synchronize(device);
  Timing timing;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    synchronize(device);
    const auto stop = std::chrono::steady_clock::now();
    timing.seconds.push_back(std::chrono::duration<double>(stop - start).count());
  }
  return timing;
}

}  // namespace muonlab::bench
