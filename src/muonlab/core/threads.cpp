#include "muonlab/core/threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include <unistd.h>  // environ (declared with _GNU_SOURCE, which g++ defines)

namespace muonlab {

int use_all_cores_unless_told() {
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    const auto cores = static_cast<int>(std::thread::hardware_concurrency());
    if (cores > 0) at::set_num_threads(cores);
  }
  return at::get_num_threads();
}

int threads_per_process(int processes, int cores) { return std::max(1, cores / std::max(1, processes)); }

std::vector<std::string> with_thread_budget(std::vector<std::string> environment, int processes) {
  const bool told = std::any_of(environment.begin(), environment.end(),
                                [](const std::string& entry) { return entry.rfind("OMP_NUM_THREADS=", 0) == 0; });
  if (!told) {
    environment.push_back("OMP_NUM_THREADS=" + std::to_string(threads_per_process(processes, core_count())));
  }
  return environment;
}

std::vector<std::string> current_environment() {
  std::vector<std::string> entries;
  for (char** e = environ; *e != nullptr; ++e) entries.emplace_back(*e);
  return entries;
}

}  // namespace muonlab
