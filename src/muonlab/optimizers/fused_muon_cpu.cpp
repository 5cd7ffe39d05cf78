#include "muonlab/optimizers/fused_muon_cpu.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <vector>

#include "muonlab/core/simd_clones.h"
#include "muonlab/optimizers/newton_schulz.h"

namespace muonlab::optim {

namespace {

// Elements per task: large enough that a task's overhead is negligible,
// small enough that two threads share a 768 x 768 matrix.
constexpr int64_t kGrain = 1 << 15;

// fp32 -> bf16 bits, rounding to nearest even as c10::BFloat16 does (a NaN
// stays a NaN), written without branches so the loops vectorize.
inline uint16_t bf16_bits(float x) {
  uint32_t bits = 0;
  std::memcpy(&bits, &x, sizeof bits);
  const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  return x != x ? uint16_t{0x7FC0} : static_cast<uint16_t>(rounded);
}

inline float from_bf16_bits(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float x = 0;
  std::memcpy(&x, &widened, sizeof x);
  return x;
}

inline void store_element(float value, float* out) { *out = value; }
inline void store_element(float value, uint16_t* out) { *out = bf16_bits(value); }
inline float load_element(const float* in) { return *in; }
inline float load_element(const uint16_t* in) { return from_bf16_bits(*in); }

// Both momentum forms as one formula, so the loop has no branch:
// m = mu m + grad_weight g, and with Nesterov U = grad_weight g + mu m
// (ema: lerp(g, m, mu) = (1 - mu) g + mu m; sum: g + mu m).
struct MomentumCoefficients {
  float mu, grad_weight;
};

template <bool kNesterov>
inline float update_of(float g, float m, float mu, float grad_weight) {
  if constexpr (kNesterov) return grad_weight * g + mu * m;
  return m;
}

// One task's share of pass 1; returns its sum of squares. Sixteen partial
// sums keep the reduction vectorizable without reassociating floats. The
// coefficients are copied into locals and the arrays marked __restrict__:
// through a reference the compiler must assume that each store to the
// momentum may change them, and the loop ran at half speed.
template <bool kNesterov, typename Out>
MUONLAB_SIMD_CLONES double momentum_chunk(const float* __restrict__ grad, float* __restrict__ momentum,
                                          Out* __restrict__ out, int64_t begin, int64_t end,
                                          MomentumCoefficients k) {
  const float mu = k.mu, grad_weight = k.grad_weight;
  constexpr int64_t kLanes = 16;
  float partial[kLanes] = {};
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    for (int64_t lane = 0; lane < kLanes; ++lane) {
      const float g = grad[i + lane];
      const float m = mu * momentum[i + lane] + grad_weight * g;
      momentum[i + lane] = m;
      const float u = update_of<kNesterov>(g, m, mu, grad_weight);
      store_element(u, out + i + lane);
      partial[lane] += u * u;
    }
  }
  double sum = 0;
  for (; i < end; ++i) {
    const float g = grad[i];
    const float m = mu * momentum[i] + grad_weight * g;
    momentum[i] = m;
    const float u = update_of<kNesterov>(g, m, mu, grad_weight);
    store_element(u, out + i);
    sum += static_cast<double>(u) * u;
  }
  for (const float p : partial) sum += p;
  return sum;
}

template <typename Out>
double momentum_pass(const float* grad, float* momentum, Out* out, int64_t n, const MomentumCoefficients& k,
                     bool nesterov) {
  // A partial sum per block, added in block order: the same norm whatever
  // the number of threads.
  const int64_t blocks = (n + kGrain - 1) / kGrain;
  std::vector<double> partial(static_cast<size_t>(blocks));
  at::parallel_for(int64_t{0}, blocks, 1, [&](int64_t first, int64_t last) {
    for (int64_t b = first; b < last; ++b) {
      const int64_t begin = b * kGrain, end = std::min(n, begin + kGrain);
      partial[static_cast<size_t>(b)] = nesterov ? momentum_chunk<true>(grad, momentum, out, begin, end, k)
                                                 : momentum_chunk<false>(grad, momentum, out, begin, end, k);
    }
  });
  double sum = 0;
  for (const double p : partial) sum += p;
  return sum;
}

template <typename In>
MUONLAB_SIMD_CLONES void decay_and_add_chunk(float* __restrict__ param, const In* __restrict__ update, int64_t begin,
                                             int64_t end, float decay, float alpha) {
  for (int64_t i = begin; i < end; ++i) param[i] = decay * param[i] + alpha * load_element(update + i);
}

template <typename In>
void decay_and_add_pass(float* param, const In* update, int64_t n, float decay, float alpha) {
  at::parallel_for(int64_t{0}, n, kGrain,
                   [&](int64_t begin, int64_t end) { decay_and_add_chunk(param, update, begin, end, decay, alpha); });
}

void check_fp32_contiguous(const torch::Tensor& t, const char* what) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous(), "fused Muon step: ",
              what, " must be a contiguous fp32 CPU tensor, got ", t.scalar_type(), " on ", t.device());
}

void check_ns_buffer(const torch::Tensor& t, const char* what, int64_t numel) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous() &&
                  (t.scalar_type() == torch::kBFloat16 || t.scalar_type() == torch::kFloat32),
              "fused Muon step: ", what, " must be a contiguous bf16 or fp32 CPU tensor, got ", t.scalar_type());
  TORCH_CHECK(t.numel() == numel, "fused Muon step: ", what, " has ", t.numel(), " elements, expected ", numel);
}

}  // namespace

double fused_momentum_update(const torch::Tensor& grad, torch::Tensor& momentum, torch::Tensor& out, double mu,
                             MomentumKind kind, bool nesterov) {
  check_fp32_contiguous(grad, "the gradient");
  check_fp32_contiguous(momentum, "the momentum buffer");
  TORCH_CHECK(momentum.numel() == grad.numel(), "fused Muon step: momentum and gradient sizes differ");
  check_ns_buffer(out, "the update buffer", grad.numel());
  const MomentumCoefficients k{static_cast<float>(mu), kind == MomentumKind::kEma ? static_cast<float>(1.0 - mu) : 1.f};
  const float* g = grad.data_ptr<float>();
  float* m = momentum.data_ptr<float>();
  if (out.scalar_type() == torch::kFloat32) return momentum_pass(g, m, out.data_ptr<float>(), grad.numel(), k, nesterov);
  return momentum_pass(g, m, reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()), grad.numel(), k, nesterov);
}

void fused_decay_and_add(torch::Tensor& param, const torch::Tensor& update, double decay, double alpha) {
  check_fp32_contiguous(param, "the parameter");
  check_ns_buffer(update, "the update", param.numel());
  float* p = param.data_ptr<float>();
  const auto d = static_cast<float>(decay), a = static_cast<float>(alpha);
  if (update.scalar_type() == torch::kFloat32) return decay_and_add_pass(p, update.data_ptr<float>(), param.numel(), d, a);
  decay_and_add_pass(p, reinterpret_cast<const uint16_t*>(update.data_ptr<at::BFloat16>()), param.numel(), d, a);
}

bool fused_cpu_step_applies(const MuonSlot& slot, const MatrixView& view) {
  const MuonOptions& options = *slot.options;
  const auto fp32_contiguous = [](const torch::Tensor& t) {
    return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous();
  };
  const auto ns_dtype = resolve_ns_dtype(options.ns_dtype(), slot.param.device());
  // Group Muon's blocks (and random grouping's generator draws) stay with
  // the general path: a slot without group_size or tag never draws.
  const bool whole_matrix = options.group_size() <= 0 || slot.tag == nullptr;
  return options.fused() && slot.param.dim() == 2 && !view.batched && fp32_contiguous(slot.param) &&
         fp32_contiguous(slot.grad) && fp32_contiguous(slot.momentum_buffer) &&
         options.second_moment() == SecondMomentKind::kNone && !options.neuron_norm() && options.orthogonalize() &&
         whole_matrix && options.ns_batching() != NsBatching::kAlways &&
         (ns_dtype == torch::kBFloat16 || ns_dtype == torch::kFloat32);
}

void fused_cpu_step(MuonSlot& slot, double scale) {
  const MuonOptions& options = *slot.options;
  const NewtonSchulzConfig config = options.newton_schulz_config();
  torch::Tensor update =
      torch::empty(slot.param.sizes(), slot.param.options().dtype(resolve_ns_dtype(config.dtype, slot.param.device())));
  const double squared_norm = fused_momentum_update(slot.grad, slot.momentum_buffer, update, options.momentum(),
                                                    options.momentum_kind(), options.nesterov());
  update.mul_(1.0 / (std::sqrt(squared_norm) * config.schedule.norm_scale + config.schedule.eps));
  const torch::Tensor orthogonal = newton_schulz_iterations(update, config);
  fused_decay_and_add(slot.param, orthogonal, 1.0 - options.lr() * options.weight_decay(), -options.lr() * scale);
  if (slot.record_update) slot.recorded_update = orthogonal.to(slot.param.scalar_type()) * scale;
}

}  // namespace muonlab::optim
