#pragma once

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

namespace muonlab {

// This machine's cores (hardware threads), at least 1. Inline: code built
// without LibTorch (the fuzz targets' worker pool) uses it too.
inline int core_count() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

// Debian's LibTorch 1.13 starts with one intra-op thread whatever the
// machine has. Use every core unless OMP_NUM_THREADS says otherwise.
// Returns the thread count in force.
int use_all_cores_unless_told();

// Intra-op threads for each of `processes` muonlab processes that share
// `cores`: cores / processes, at least 1. Every process taking every core
// oversubscribes the machine (a sweep's parallel runs, a launcher's ranks:
// 5-7x slower each on 2 cores, docs/benchmarks.md).
int threads_per_process(int processes, int cores);

// `environment` ("NAME=value" entries) for one of `processes` children:
// OMP_NUM_THREADS = threads_per_process(processes, this machine's cores)
// added unless the environment sets it already (the user's choice wins).
std::vector<std::string> with_thread_budget(std::vector<std::string> environment, int processes);

// This process's environment as "NAME=value" entries.
std::vector<std::string> current_environment();

}  // namespace muonlab
