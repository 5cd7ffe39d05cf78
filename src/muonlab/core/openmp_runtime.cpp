#include "muonlab/core/openmp_runtime.h"

#include <ATen/Config.h>
#include <ATen/Parallel.h>
#include <omp.h>

#include <algorithm>

#include "muonlab/core/code_location.h"

namespace muonlab {

// LibTorch sets its runtime's thread count in at::set_num_threads; if the
// given runtime sees the new value, it is LibTorch's. The probe value differs
// from both counts before it, so an equal answer is no accident.
bool torch_sets_thread_count_of(int (*runtime_max_threads)()) {
  const int torch_threads = at::get_num_threads();
  const int probe = std::max(torch_threads, runtime_max_threads()) + 1;
  at::set_num_threads(probe);
  const bool reached = runtime_max_threads() == probe;
  at::set_num_threads(torch_threads);
  return reached;
}

OpenMpRuntime openmp_runtime() {
#if AT_PARALLEL_OPENMP
  // The address of omp_get_max_threads as this code sees it: inside the
  // library its calls were bound to.
  return {file_holding(reinterpret_cast<const void*>(&omp_get_max_threads)).string(),
          torch_sets_thread_count_of(&omp_get_max_threads)};
#else
  // at::parallel_for runs on LibTorch's own thread pool, so no OpenMP
  // runtime is in play; and there at::set_num_threads may be called only
  // once, so the probe must not run.
  return {"", true};
#endif
}

std::string describe(const OpenMpRuntime& runtime) {
  if (runtime.library.empty() && runtime.shared_with_torch) return "none (LibTorch's own thread pool)";
  const std::string library = runtime.library.empty() ? "an unknown library" : runtime.library;
  if (runtime.shared_with_torch) return library + " (LibTorch's)";
  return library + " (not LibTorch's: two OpenMP runtimes in one process, slower CPU steps)";
}

}  // namespace muonlab
