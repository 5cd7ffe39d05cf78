#include "muonlab/optimizers/finite_check.h"

#include <ATen/Parallel.h>

#include <cstdint>
#include <cstring>

#include "muonlab/core/simd_clones.h"

namespace muonlab::optim {

namespace {

constexpr int64_t kFiniteCheckGrain = 1 << 16;

// True when some element of [begin, end) has its exponent field all ones.
// The flags are OR-ed without a branch or an early exit so the loop
// vectorizes (integer OR needs no reassociation of floats).
template <typename Bits>
MUONLAB_SIMD_CLONES bool any_exponent_all_ones_in(const Bits* bits, int64_t begin, int64_t end, Bits exponent_mask) {
  Bits any = 0;
  for (int64_t i = begin; i < end; ++i) any |= static_cast<Bits>((bits[i] & exponent_mask) == exponent_mask);
  return any != 0;
}

template <typename Bits>
bool any_exponent_all_ones(const void* data, int64_t n, Bits exponent_mask) {
  const auto* bits = static_cast<const Bits*>(data);
  return at::parallel_reduce(
      int64_t{0}, n, kFiniteCheckGrain, false,
      [&](int64_t begin, int64_t end, bool found) {
        return found || any_exponent_all_ones_in(bits, begin, end, exponent_mask);
      },
      [](bool a, bool b) { return a || b; });
}

}  // namespace

bool cpu_all_finite(const torch::Tensor& t) {
  TORCH_CHECK(t.device().is_cpu(), "cpu_all_finite: expected a CPU tensor, got one on ", t.device());
  if (!t.is_floating_point()) return true;
  if (!t.is_contiguous()) return torch::isfinite(t).all().item<bool>();
  const void* data = t.data_ptr();
  const int64_t n = t.numel();
  switch (t.scalar_type()) {
    case torch::kFloat32: return !any_exponent_all_ones<uint32_t>(data, n, 0x7F800000u);
    case torch::kFloat64: return !any_exponent_all_ones<uint64_t>(data, n, 0x7FF0000000000000ull);
    case torch::kBFloat16: return !any_exponent_all_ones<uint16_t>(data, n, uint16_t{0x7F80});
    case torch::kFloat16: return !any_exponent_all_ones<uint16_t>(data, n, uint16_t{0x7C00});
    default: return torch::isfinite(t).all().item<bool>();
  }
}

std::optional<size_t> first_nonfinite(const std::vector<torch::Tensor>& tensors) {
  std::vector<size_t> on_device;
  std::vector<torch::Tensor> finite_flags;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const torch::Tensor& t = tensors[i];
    if (!t.defined()) continue;
    if (t.device().is_cpu()) {
      if (!cpu_all_finite(t)) return i;
      continue;
    }
    on_device.push_back(i);
    finite_flags.push_back(torch::isfinite(t).all());
  }
  if (on_device.empty()) return std::nullopt;
  // The search below runs only when something is wrong.
  const auto flags = torch::stack(finite_flags).cpu();
  if (flags.all().item<bool>()) return std::nullopt;
  const auto* finite = flags.data_ptr<bool>();
  for (size_t k = 0; k < on_device.size(); ++k) {
    if (!finite[k]) return on_device[k];
  }
  return std::nullopt;
}

}  // namespace muonlab::optim
