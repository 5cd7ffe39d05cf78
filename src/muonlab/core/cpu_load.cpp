#include "muonlab/core/cpu_load.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

namespace muonlab {

std::optional<CpuTimes> parse_cpu_times(const std::string& proc_stat) {
  std::istringstream lines(proc_stat);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("cpu ", 0) != 0) continue;
    std::istringstream fields(line.substr(4));
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    unsigned long long value[8] = {};
    int read = 0;
    while (read < 8 && fields >> value[read]) ++read;
    if (read < 4) return std::nullopt;
    CpuTimes times;
    times.busy = value[0] + value[1] + value[2] + value[5] + value[6] + value[7];
    times.total = times.busy + value[3] + value[4];
    return times;
  }
  return std::nullopt;
}

namespace {

std::optional<CpuTimes> read_cpu_times() {
  std::ifstream file("/proc/stat");
  if (!file) return std::nullopt;
  std::ostringstream text;
  text << file.rdbuf();
  return parse_cpu_times(text.str());
}

}  // namespace

std::optional<double> busy_cores(std::chrono::milliseconds window) {
  const auto before = read_cpu_times();
  std::this_thread::sleep_for(window);
  const auto after = read_cpu_times();
  if (!before || !after || after->total <= before->total) return std::nullopt;
  const auto cores = static_cast<double>(std::max(1u, std::thread::hardware_concurrency()));
  return cores * static_cast<double>(after->busy - before->busy) / static_cast<double>(after->total - before->total);
}

std::string oversubscription_warning(double busy, int threads, int cores) {
  if (busy < 0.5 || busy + threads <= cores + 0.5) return "";
  const int free_cores = std::max(1, cores - static_cast<int>(std::lround(busy)));
  return fmt::format(
      "note: {:.1f} of {} cores were busy with other processes when this run started; with {} threads here they "
      "are oversubscribed, and a step can take several times longer (docs/usage.md, Training on several "
      "processes). Give each process its share: OMP_NUM_THREADS={} here, or several runs through sweep "
      "--parallel or launch.",
      busy, cores, threads, free_cores);
}

}  // namespace muonlab
