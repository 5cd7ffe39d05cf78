#include "muonlab/core/native_bf16.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#include <cstdint>

namespace muonlab {

namespace {

#if defined(__x86_64__) || defined(__i386__)
// The AVX-512 and AMX register state must be enabled by the OS (XCR0), or
// the instructions fault although CPUID lists them.
uint64_t os_enabled_register_state() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27))) return 0;  // OSXSAVE
  uint32_t low = 0, high = 0;
  __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
  return (static_cast<uint64_t>(high) << 32) | low;
}

std::string x86_bf16_instructions() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return "";
  const unsigned max_subleaf = eax;
  const bool amx_bf16 = edx & (1u << 22);
  const uint64_t xcr0 = os_enabled_register_state();
  constexpr uint64_t kAvx512State = 0xe6;       // opmask, ZMM_Hi256, Hi16_ZMM + SSE/AVX
  constexpr uint64_t kAmxState = 0x60000;       // XTILECFG, XTILEDATA
  if (amx_bf16 && (xcr0 & kAmxState) == kAmxState) return "AMX-BF16";
  if (max_subleaf < 1 || !__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return "";
  const bool avx512_bf16 = eax & (1u << 5);
  if (avx512_bf16 && (xcr0 & kAvx512State) == kAvx512State) return "AVX512-BF16";
  return "";
}
#endif

}  // namespace

std::string cpu_bf16_instructions() {
#if defined(__x86_64__) || defined(__i386__)
  static const std::string found = x86_bf16_instructions();
  return found;
#elif defined(__aarch64__) && defined(__linux__) && defined(HWCAP2_BF16)
  return (getauxval(AT_HWCAP2) & HWCAP2_BF16) ? "BF16" : "";
#else
  return "";
#endif
}

bool has_native_bf16(const torch::Device& device) {
  // Pre-Ampere GPUs run bf16 without tensor cores (slowly); the GPUs
  // muonlab targets are Ampere and later.
  if (device.is_cuda()) return true;
  return !cpu_bf16_instructions().empty();
}

std::string native_bf16_reason(const torch::Device& device) {
  if (device.is_cuda()) return "CUDA";
  const auto instructions = cpu_bf16_instructions();
  return instructions.empty() ? "no bf16 instructions on this CPU" : instructions;
}

}  // namespace muonlab
