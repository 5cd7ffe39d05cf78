#include "muonlab/core/version.h"

#include "muonlab/core/allocator_settings.h"
#include "muonlab/core/native_bf16.h"
#include "muonlab/core/openmp_runtime.h"
#include "muonlab/core/openmp_wait.h"

#include <fmt/format.h>

#include <cstdlib>

#include "muonlab/core/torch_compat.h"

namespace muonlab {

std::string version() { return MUONLAB_VERSION; }

std::string build_report() {
  std::string report = fmt::format("muonlab {}\n", version());
  report += fmt::format("LibTorch {}\n", compat::torch_version());
  const bool cuda = torch::cuda::is_available();
  report += fmt::format("CUDA: {}\n",
                        cuda ? fmt::format("available, {} device(s)",
                                           torch::cuda::device_count())
                             : std::string("not available"));
  report += fmt::format("CPU threads: {}\n", at::get_num_threads());
  report += fmt::format("OpenMP: {}\n", describe(openmp_runtime()));
  report += fmt::format("OpenMP idle threads: {}\n", describe_openmp_wait(std::getenv));
  const auto bf16 = cpu_bf16_instructions();
  report += fmt::format("CPU bf16 instructions: {}\n", bf16.empty() ? "none (auto precisions are fp32)" : bf16);
  report += fmt::format("allocator: {}\n", allocator_name());
  return report;
}

}  // namespace muonlab
