// How busy the machine's cores are with other work when a CPU run starts.
//
// Two processes whose OpenMP teams together want more threads than there are
// cores slow each other down far more than the share they lose: a team waits
// at every barrier for a member the kernel has descheduled, and a training
// step then takes up to ten times longer, in muonlab and in PyTorch alike
// (docs/benchmarks.md). `train` samples the load before it starts and says
// so, since nothing else in its output would explain such a run.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace muonlab {

// Jiffies summed over all cores, from the "cpu " line of /proc/stat.
struct CpuTimes {
  unsigned long long busy = 0;   // user, nice, system, irq, softirq, steal
  unsigned long long total = 0;  // the same plus idle and iowait
};

// The "cpu " line of a /proc/stat text; none if it has none.
std::optional<CpuTimes> parse_cpu_times(const std::string& proc_stat);

// Cores' worth of CPU time that other processes used between two samples
// of /proc/stat `wall_seconds` apart, during which this process and the
// children it waited for used `own_seconds` of CPU time; at least 0.
double other_busy_cores(const CpuTimes& before, const CpuTimes& after, double own_seconds, double wall_seconds,
                        int cores);

// The same measured from now on: how busy other processes keep the cores
// while this one works (a benchmark on a loaded machine says how loaded).
class OtherProcessesLoad {
 public:
  OtherProcessesLoad();
  // Over the time since construction; none where /proc/stat cannot be read.
  std::optional<double> busy_cores() const;

 private:
  std::optional<CpuTimes> start_times_;
  double start_own_seconds_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// Cores' worth of CPU time used by other processes over `window`, while
// this process sleeps; none where /proc/stat cannot be read.
std::optional<double> busy_cores(std::chrono::milliseconds window);

// A warning when `threads` more threads would oversubscribe `cores` of
// which `busy` are in use; "" when they fit (within half a core).
std::string oversubscription_warning(double busy, int threads, int cores);

}  // namespace muonlab
