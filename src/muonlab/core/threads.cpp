#include "muonlab/core/threads.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <thread>

namespace muonlab {

int use_all_cores_unless_told() {
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    const auto cores = static_cast<int>(std::thread::hardware_concurrency());
    if (cores > 0) at::set_num_threads(cores);
  }
  return at::get_num_threads();
}

}  // namespace muonlab
