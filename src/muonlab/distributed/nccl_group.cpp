// A NCCL process group (c10d's GPU collectives). Compiled only where CMake
// found a LibTorch built with NCCL and this file compiled against it
// (MUONLAB_NCCL, CMakeLists.txt); process_group.cpp refuses NCCL otherwise.
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <cstdlib>

#include "muonlab/distributed/process_group.h"

namespace muonlab::distributed {

c10::intrusive_ptr<compat::CollectiveGroup> nccl_group(const c10::intrusive_ptr<c10d::Store>& store, int64_t rank,
                                                       int64_t world_size, std::chrono::milliseconds timeout) {
  // A collective that outlives `timeout` makes wait() throw, as Gloo's do, so
  // the trainer names the rank and the step; without it ProcessGroupNCCL's
  // watchdog would abort the process with its own message. The first name is
  // PyTorch 2.2+'s, the second older releases'; a value the user set stays.
  setenv("TORCH_NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
  setenv("NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, static_cast<int>(rank), static_cast<int>(world_size),
                                                     options);
}

bool nccl_built() { return true; }

}  // namespace muonlab::distributed
