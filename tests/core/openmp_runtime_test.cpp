// muonlab's parallel loops run on LibTorch's OpenMP runtime, not on a second
// one beside it (which made the Muon step 1.25-2.2x slower from Python).
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <filesystem>

#include "muonlab/core/openmp_runtime.h"

namespace muonlab {
namespace {

TEST(OpenMpRuntime, IsLibTorchsOwn) {
  const OpenMpRuntime runtime = openmp_runtime();
  EXPECT_TRUE(runtime.shared_with_torch) << describe(runtime);
  // libgomp, LLVM's libomp or Intel's libiomp5, under whatever name a wheel
  // gives its copy.
  EXPECT_NE(std::filesystem::path(runtime.library).filename().string().find("omp"), std::string::npos)
      << runtime.library;
}

TEST(OpenMpRuntime, ProbeLeavesTheThreadCountAsItWas) {
  const int before = at::get_num_threads();
  openmp_runtime();
  EXPECT_EQ(at::get_num_threads(), before);
}

// The probe tells runtimes apart: LLVM's libomp, loaded beside LibTorch's
// libgomp, keeps its own thread count. (Without this the test above could
// pass for any runtime.)
TEST(OpenMpRuntime, ProbeSeesThatAnotherRuntimeIsNotLibTorchs) {
  void* other = dlopen("libomp.so.5", RTLD_NOW | RTLD_LOCAL);
  if (other == nullptr) GTEST_SKIP() << "LLVM's libomp.so.5 is not installed: " << dlerror();
  const auto other_max_threads = reinterpret_cast<int (*)()>(dlsym(other, "omp_get_max_threads"));
  ASSERT_NE(other_max_threads, nullptr);
  if (openmp_runtime().library.find("libomp") != std::string::npos) GTEST_SKIP() << "LibTorch's runtime is libomp";
  EXPECT_FALSE(torch_sets_thread_count_of(other_max_threads));
  // Left loaded: an OpenMP runtime's threads may outlive dlclose.
}

}  // namespace
}  // namespace muonlab
