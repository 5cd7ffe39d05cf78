// The bf16 detection against the kernel's own report of the CPU's flags.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "muonlab/core/native_bf16.h"

namespace muonlab {
namespace {

// The "flags" line of /proc/cpuinfo as words ("" where there is none: not
// Linux on x86). Linux lists a feature only when the OS enables its state.
std::string cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) return " " + line.substr(line.find(':') + 1) + " ";
  }
  return "";
}

bool has_flag(const std::string& flags, const std::string& name) {
  return flags.find(" " + name + " ") != std::string::npos;
}

TEST(NativeBf16, CpuDetectionAgreesWithProcCpuinfo) {
#if !(defined(__x86_64__) && defined(__linux__))
  GTEST_SKIP() << "the reference is Linux's x86 flag list";
#endif
  const auto flags = cpuinfo_flags();
  ASSERT_FALSE(flags.empty()) << "no flags line in /proc/cpuinfo";
  const bool amx = has_flag(flags, "amx_bf16");
  const bool avx512 = has_flag(flags, "avx512_bf16");
  const auto found = cpu_bf16_instructions();
  if (amx) {
    EXPECT_EQ(found, "AMX-BF16");
  } else if (avx512) {
    EXPECT_EQ(found, "AVX512-BF16");
  } else {
    EXPECT_EQ(found, "");
  }
  EXPECT_EQ(has_native_bf16(torch::kCPU), amx || avx512);
  EXPECT_EQ(native_bf16_reason(torch::kCPU), found.empty() ? "no bf16 instructions on this CPU" : found);
}

TEST(NativeBf16, CudaCountsAsNative) {
  EXPECT_TRUE(has_native_bf16(torch::Device(torch::kCUDA)));
  EXPECT_EQ(native_bf16_reason(torch::Device(torch::kCUDA)), "CUDA");
}

}  // namespace
}  // namespace muonlab
