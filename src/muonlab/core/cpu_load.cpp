#include "muonlab/core/cpu_load.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "muonlab/core/threads.h"

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

// CPU seconds used by this process and by the children it has waited for.
double own_cpu_seconds() {
  double seconds = 0;
  for (const int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    struct rusage usage {};
    ::getrusage(who, &usage);
    for (const timeval& t : {usage.ru_utime, usage.ru_stime}) {
      seconds += static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec);
    }
  }
  return seconds;
}

}  // namespace

double other_busy_cores(const CpuTimes& before, const CpuTimes& after, double own_seconds, double wall_seconds,
                        int cores) {
  if (after.total <= before.total || wall_seconds <= 0) return 0;
  // /proc/stat's shares give the machine's busy cores; the wall clock turns
  // this process's seconds into cores.
  const double machine =
      cores * static_cast<double>(after.busy - before.busy) / static_cast<double>(after.total - before.total);
  return std::clamp(machine - own_seconds / wall_seconds, 0.0, static_cast<double>(cores));
}

OtherProcessesLoad::OtherProcessesLoad()
    : start_times_(read_cpu_times()), start_own_seconds_(own_cpu_seconds()), start_(std::chrono::steady_clock::now()) {}

std::optional<double> OtherProcessesLoad::busy_cores() const {
  const auto now = read_cpu_times();
  if (!start_times_ || !now || now->total <= start_times_->total) return std::nullopt;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return other_busy_cores(*start_times_, *now, own_cpu_seconds() - start_own_seconds_, wall, core_count());
}

std::optional<double> busy_cores(std::chrono::milliseconds window) {
  const OtherProcessesLoad load;
  std::this_thread::sleep_for(window);
  return load.busy_cores();
}

std::string oversubscription_warning(double busy, int threads, int cores) {
  if (busy < 0.5 || busy + threads <= cores + 0.5) return "";
  const int free_cores = std::max(1, cores - static_cast<int>(std::lround(busy)));
  return fmt::format(
      "note: {:.1f} of {} cores were busy with other processes when this run started; with {} threads here they "
      "are oversubscribed, and a step can take several times longer (docs/usage.md, Training on several "
      "processes). Give each process its share: OMP_NUM_THREADS={} here, or several runs through sweep "
      "--parallel or launch. Beside load that is not yours to share out, OMP_WAIT_POLICY=passive keeps most of the "
      "speed with the same results (and costs about a fifth of it on an idle machine).",
      busy, cores, threads, free_cores);
}

}  // namespace muonlab
