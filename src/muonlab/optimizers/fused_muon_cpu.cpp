#include "muonlab/optimizers/fused_muon_cpu.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <algorithm>
#include <vector>

#include "muonlab/core/simd_clones.h"
#include "muonlab/optimizers/cpu_pass.h"
#include "muonlab/optimizers/head_groups.h"
#include "muonlab/optimizers/newton_schulz.h"

namespace muonlab::optim {

namespace {

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

// What pass 1 divides the update by: nothing (Muon), or Muon²'s
// sqrt(V_hat) + eps (docs/algorithms.md, Muon² and Muon²-F). Each is called
// per element with the flat index, the update and the gradient, and passed
// by value so its coefficients are locals of the loop.
struct NoPreconditioner {
  static constexpr bool kPerRow = false;
  float operator()(int64_t, float u, float) const { return u; }
};

// Muon²: V = keep V + add g², then U / (sqrt(V / correction) + eps).
struct FullPreconditioner {
  static constexpr bool kPerRow = false;
  float* second_moment;
  float keep, add, correction, eps;
  float operator()(int64_t i, float u, float g) const {
    const float v = keep * second_moment[i] + add * (g * g);
    second_moment[i] = v;
    return u / (std::sqrt(v / correction) + eps);
  }
};

// Muon²-F within row i: U / (sqrt(R_i C'_j) + eps), with
// C'_j = C_j / sum(C) / correction taken once per column.
struct FactoredRowPreconditioner {
  const float* scaled_col_moment;
  int64_t row_start;  // flat index of the row's first element
  float row_moment, eps;
  float operator()(int64_t i, float u, float) const {
    return u / (std::sqrt(row_moment * scaled_col_moment[i - row_start]) + eps);
  }
};

struct FactoredPreconditioner {
  static constexpr bool kPerRow = true;
  const float* row_moment;
  const float* scaled_col_moment;
  int64_t cols;
  float eps;
  FactoredRowPreconditioner in_row(int64_t row) const {
    return {scaled_col_moment, row * cols, row_moment[row], eps};
  }
};

// Calls body(row, first, last) for each piece of the flat range
// [begin, end) of a matrix with `cols` columns that lies in one row: the
// loops that take a per-row factor keep their inner loop contiguous and
// free of divisions.
template <typename Body>
inline void for_each_row_segment(int64_t begin, int64_t end, int64_t cols, Body&& body) {
  for (int64_t first = begin; first < end;) {
    const int64_t row = first / cols, last = std::min(end, (row + 1) * cols);
    body(row, first, last);
    first = last;
  }
}

// Pass 1 over [begin, end) of one row (or of the whole flat range when the
// preconditioner is elementwise); returns its sum of squares. Sixteen
// partial sums keep the reduction vectorizable without reassociating
// floats; they are doubles because the square of an fp32 past 1e19
// overflows fp32, and an inf norm would zero the update (the pass stays
// memory bound: 2 ms more on GPT-2 small's matrices). The coefficients
// are locals and the arrays __restrict__: through
// a reference the compiler must assume that each store to the momentum may
// change them, and the loop ran at half speed.
template <bool kNesterov, typename Out, typename Preconditioner>
inline double momentum_segment(const float* __restrict__ grad, float* __restrict__ momentum, Out* __restrict__ out,
                               int64_t begin, int64_t end, float mu, float grad_weight, Preconditioner divide) {
  constexpr int64_t kLanes = 16;
  double partial[kLanes] = {};
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    for (int64_t lane = 0; lane < kLanes; ++lane) {
      const float g = grad[i + lane];
      const float m = mu * momentum[i + lane] + grad_weight * g;
      momentum[i + lane] = m;
      const float u = divide(i + lane, update_of<kNesterov>(g, m, mu, grad_weight), g);
      store_element(u, out + i + lane);
      partial[lane] += static_cast<double>(u) * u;
    }
  }
  double sum = 0;
  for (; i < end; ++i) {
    const float g = grad[i];
    const float m = mu * momentum[i] + grad_weight * g;
    momentum[i] = m;
    const float u = divide(i, update_of<kNesterov>(g, m, mu, grad_weight), g);
    store_element(u, out + i);
    sum += static_cast<double>(u) * u;
  }
  for (const double p : partial) sum += p;
  return sum;
}

// One task's share of pass 1, cut at row ends where the preconditioner is
// per row.
template <bool kNesterov, typename Out, typename Preconditioner>
MUONLAB_SIMD_CLONES double momentum_chunk(const float* grad, float* momentum, Out* out, int64_t begin, int64_t end,
                                          MomentumCoefficients k, Preconditioner divide) {
  if constexpr (!Preconditioner::kPerRow) {
    return momentum_segment<kNesterov>(grad, momentum, out, begin, end, k.mu, k.grad_weight, divide);
  } else {
    double sum = 0;
    for_each_row_segment(begin, end, divide.cols, [&](int64_t row, int64_t first, int64_t last) {
      sum += momentum_segment<kNesterov>(grad, momentum, out, first, last, k.mu, k.grad_weight, divide.in_row(row));
    });
    return sum;
  }
}

template <typename Out, typename Preconditioner>
double momentum_pass(const float* grad, float* momentum, Out* out, int64_t n, const MomentumCoefficients& k,
                     bool nesterov, const Preconditioner& divide) {
  // A partial sum per block, added in block order: the same norm whatever
  // the number of threads.
  const int64_t blocks = (n + kCpuPassGrain - 1) / kCpuPassGrain;
  std::vector<double> partial(static_cast<size_t>(blocks));
  at::parallel_for(int64_t{0}, blocks, 1, [&](int64_t first, int64_t last) {
    for (int64_t b = first; b < last; ++b) {
      const int64_t begin = b * kCpuPassGrain, end = std::min(n, begin + kCpuPassGrain);
      partial[static_cast<size_t>(b)] = nesterov ? momentum_chunk<true>(grad, momentum, out, begin, end, k, divide)
                                                 : momentum_chunk<false>(grad, momentum, out, begin, end, k, divide);
    }
  });
  double sum = 0;
  for (const double p : partial) sum += p;
  return sum;
}

template <typename In>
inline void decay_and_add_segment(float* __restrict__ param, const In* __restrict__ update, int64_t begin,
                                  int64_t end, float decay, float alpha) {
  for (int64_t i = begin; i < end; ++i) param[i] = decay * param[i] + alpha * load_element(update + i);
}

// Pass 2 over [begin, end): alpha for every element, or alpha times
// row_factor[row] where a row factor is given (NorMuon).
template <typename In>
MUONLAB_SIMD_CLONES void decay_and_add_chunk(float* param, const In* update, int64_t begin, int64_t end, float decay,
                                             float alpha, const float* row_factor, int64_t cols) {
  if (row_factor == nullptr) return decay_and_add_segment(param, update, begin, end, decay, alpha);
  for_each_row_segment(begin, end, cols, [&](int64_t row, int64_t first, int64_t last) {
    decay_and_add_segment(param, update, first, last, decay, alpha * row_factor[row]);
  });
}

template <typename In>
void decay_and_add_pass(float* param, const In* update, int64_t n, float decay, float alpha,
                        const float* row_factor, int64_t cols) {
  at::parallel_for(int64_t{0}, n, kCpuPassGrain, [&](int64_t begin, int64_t end) {
    decay_and_add_chunk(param, update, begin, end, decay, alpha, row_factor, cols);
  });
}

// x *= factor: the product in fp32, rounded once to x's type (LibTorch 1.13's
// bf16 mul_ by a scalar rounds the factor to bf16 first, and took twice as
// long here).
template <typename T>
MUONLAB_SIMD_CLONES void scale_chunk(T* __restrict__ x, int64_t begin, int64_t end, float factor) {
  for (int64_t i = begin; i < end; ++i) store_element(factor * load_element(x + i), x + i);
}

template <typename T>
void scale_pass(T* x, int64_t n, float factor) {
  at::parallel_for(int64_t{0}, n, kCpuPassGrain, [&](int64_t begin, int64_t end) { scale_chunk(x, begin, end, factor); });
}

// Sum of squares of each row of a contiguous [rows, cols] matrix over rows
// [first_row, last_row), in double from sixteen fp32 lanes per row; with
// kColumnSums the squares are also added to col_sums (Muon²-F).
template <typename In, bool kColumnSums = false>
MUONLAB_SIMD_CLONES void row_square_sums_chunk(const In* __restrict__ x, int64_t first_row, int64_t last_row,
                                               int64_t cols, double* __restrict__ sums,
                                               float* __restrict__ col_sums = nullptr) {
  constexpr int64_t kLanes = 16;
  for (int64_t r = first_row; r < last_row; ++r) {
    const In* __restrict__ row = x + r * cols;
    float partial[kLanes] = {};
    int64_t j = 0;
    for (; j + kLanes <= cols; j += kLanes) {
      for (int64_t lane = 0; lane < kLanes; ++lane) {
        const float v = load_element(row + j + lane);
        partial[lane] += v * v;
        if constexpr (kColumnSums) col_sums[j + lane] += v * v;
      }
    }
    double sum = 0;
    for (; j < cols; ++j) {
      const float v = load_element(row + j);
      sum += static_cast<double>(v) * v;
      if constexpr (kColumnSums) col_sums[j] += v * v;
    }
    for (const float p : partial) sum += p;
    sums[r] = sum;
  }
}

template <typename In>
std::vector<double> row_square_sums(const In* x, int64_t rows, int64_t cols) {
  std::vector<double> sums(static_cast<size_t>(rows));
  const int64_t rows_per_task = std::max<int64_t>(1, kCpuPassGrain / cols);
  at::parallel_for(int64_t{0}, rows, rows_per_task, [&](int64_t first, int64_t last) {
    row_square_sums_chunk(x, first, last, cols, sums.data());
  });
  return sums;
}

// Muon²-F's sums of G*G over each row and each column of a contiguous
// [rows, cols] gradient in one read. Each block of rows sums its own
// columns and the blocks are added in order: the same sums whatever the
// number of threads.
void square_sums(const float* grad, int64_t rows, int64_t cols, float* row_sums, float* col_sums) {
  const int64_t rows_per_block = std::max<int64_t>(1, kCpuPassGrain / cols);
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  std::vector<double> row_totals(static_cast<size_t>(rows));
  std::vector<float> block_col_sums(static_cast<size_t>(blocks * cols), 0.f);
  at::parallel_for(int64_t{0}, blocks, 1, [&](int64_t first, int64_t last) {
    for (int64_t b = first; b < last; ++b) {
      row_square_sums_chunk<float, true>(grad, b * rows_per_block, std::min(rows, (b + 1) * rows_per_block), cols,
                                         row_totals.data(), block_col_sums.data() + b * cols);
    }
  });
  for (int64_t i = 0; i < rows; ++i) row_sums[i] = static_cast<float>(row_totals[static_cast<size_t>(i)]);
  std::vector<double> total(static_cast<size_t>(cols), 0.0);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t j = 0; j < cols; ++j) total[static_cast<size_t>(j)] += block_col_sums[static_cast<size_t>(b * cols + j)];
  }
  for (int64_t j = 0; j < cols; ++j) col_sums[j] = static_cast<float>(total[static_cast<size_t>(j)]);
}

void check_fp32_contiguous(const torch::Tensor& t, const char* what) {
  TORCH_CHECK(fp32_cpu_contiguous(t), "fused Muon step: ",
              what, " must be a contiguous fp32 CPU tensor, got ", t.scalar_type(), " on ", t.device());
}

void check_ns_buffer(const torch::Tensor& t, const char* what, int64_t numel) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous() &&
                  (t.scalar_type() == torch::kBFloat16 || t.scalar_type() == torch::kFloat32),
              "fused Muon step: ", what, " must be a contiguous bf16 or fp32 CPU tensor, got ", t.scalar_type());
  TORCH_CHECK(t.numel() == numel, "fused Muon step: ", what, " has ", t.numel(), " elements, expected ", numel);
}

// Muon²-F's state advanced by this gradient (R and C), and the divisor of
// pass 1 built on it.
FactoredPreconditioner advance_factored_moment(const torch::Tensor& grad, SecondMomentState& state,
                                               const SecondMomentOptions& options, double correction,
                                               torch::Tensor& scaled_col_moment) {
  const int64_t rows = grad.size(0), cols = grad.size(1);
  check_fp32_contiguous(state.row, "Muon²-F's row second moment");
  check_fp32_contiguous(state.col, "Muon²-F's column second moment");
  TORCH_CHECK(state.row.numel() == rows && state.col.numel() == cols, "fused Muon step: Muon²-F state of ",
              state.row.numel(), " rows and ", state.col.numel(), " columns for a ", rows, " x ", cols, " gradient");
  torch::Tensor row_sums = torch::empty({rows}, grad.options()), col_sums = torch::empty({cols}, grad.options());
  square_sums(grad.data_ptr<float>(), rows, cols, row_sums.data_ptr<float>(), col_sums.data_ptr<float>());
  fold_factored_square_sums(state, row_sums, col_sums, options);
  // V_hat_ij = R_i C_j / sum(C) / correction, the column factor taken once
  // per column.
  scaled_col_moment = (state.col / factored_column_total(state.col) / correction).contiguous();
  return {state.row.data_ptr<float>(), scaled_col_moment.data_ptr<float>(), cols, static_cast<float>(options.eps)};
}

}  // namespace

double fused_momentum_update(const torch::Tensor& grad, torch::Tensor& momentum, torch::Tensor& out, double mu,
                             MomentumKind kind, bool nesterov, const FusedSecondMoment& second_moment) {
  check_fp32_contiguous(grad, "the gradient");
  check_fp32_contiguous(momentum, "the momentum buffer");
  TORCH_CHECK(momentum.numel() == grad.numel(), "fused Muon step: momentum and gradient sizes differ");
  check_ns_buffer(out, "the update buffer", grad.numel());
  const MomentumCoefficients k{static_cast<float>(mu), kind == MomentumKind::kEma ? static_cast<float>(1.0 - mu) : 1.f};
  const float* g = grad.data_ptr<float>();
  float* m = momentum.data_ptr<float>();
  const int64_t n = grad.numel();
  const auto run = [&](const auto& divide) {
    if (out.scalar_type() == torch::kFloat32) return momentum_pass(g, m, out.data_ptr<float>(), n, k, nesterov, divide);
    return momentum_pass(g, m, reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()), n, k, nesterov, divide);
  };
  const SecondMomentOptions& options = second_moment.options;
  if (options.kind == SecondMomentKind::kNone) return run(NoPreconditioner{});
  TORCH_CHECK(second_moment.state != nullptr && second_moment.step >= 1,
              "fused Muon step: Muon² needs its state and the 1-based step");
  SecondMomentState& state = *second_moment.state;
  const double correction = second_moment_bias_correction(second_moment.step, options);
  if (options.kind == SecondMomentKind::kFull) {
    check_fp32_contiguous(state.full, "Muon²'s second moment");
    TORCH_CHECK(state.full.numel() == n, "fused Muon step: Muon² state and gradient sizes differ");
    return run(FullPreconditioner{state.full.data_ptr<float>(), static_cast<float>(options.beta2),
                                  static_cast<float>(1.0 - options.beta2), static_cast<float>(correction),
                                  static_cast<float>(options.eps)});
  }
  TORCH_CHECK(grad.dim() == 2, "fused Muon step: Muon²-F needs a matrix, got ", grad.dim(), " dimensions");
  torch::Tensor scaled_col_moment;  // alive for the pass
  return run(advance_factored_moment(grad, state, options, correction, scaled_col_moment));
}

void fused_decay_and_add(torch::Tensor& param, const torch::Tensor& update, double decay, double alpha,
                         const torch::Tensor& row_factor) {
  check_fp32_contiguous(param, "the parameter");
  check_ns_buffer(update, "the update", param.numel());
  const float* factor = nullptr;
  int64_t cols = 1;
  if (row_factor.defined()) {
    check_fp32_contiguous(row_factor, "the row factor");
    TORCH_CHECK(param.dim() == 2 && row_factor.numel() == param.size(0), "fused Muon step: a row factor of ",
                row_factor.numel(), " elements for a parameter of shape ", param.sizes());
    factor = row_factor.data_ptr<float>();
    cols = param.size(1);
  }
  float* p = param.data_ptr<float>();
  const auto d = static_cast<float>(decay), a = static_cast<float>(alpha);
  if (update.scalar_type() == torch::kFloat32) {
    return decay_and_add_pass(p, update.data_ptr<float>(), param.numel(), d, a, factor, cols);
  }
  decay_and_add_pass(p, reinterpret_cast<const uint16_t*>(update.data_ptr<at::BFloat16>()), param.numel(), d, a,
                     factor, cols);
}

void fused_scale(torch::Tensor& update, double factor) {
  check_ns_buffer(update, "the update", update.numel());
  const auto f = static_cast<float>(factor);
  if (update.scalar_type() == torch::kFloat32) return scale_pass(update.data_ptr<float>(), update.numel(), f);
  scale_pass(reinterpret_cast<uint16_t*>(update.data_ptr<at::BFloat16>()), update.numel(), f);
}

torch::Tensor fused_neuron_factors(const torch::Tensor& orthogonal, torch::Tensor& state,
                                   const NeuronNormOptions& options) {
  check_ns_buffer(orthogonal, "the orthogonalized update", orthogonal.numel());
  check_fp32_contiguous(state, "NorMuon's neuron second moment");
  TORCH_CHECK(orthogonal.dim() == 2 && state.numel() == orthogonal.size(0), "fused Muon step: NorMuon state of ",
              state.numel(), " rows for an update of shape ", orthogonal.sizes());
  const int64_t rows = orthogonal.size(0), cols = orthogonal.size(1);
  const std::vector<double> sums =
      orthogonal.scalar_type() == torch::kFloat32
          ? row_square_sums(orthogonal.data_ptr<float>(), rows, cols)
          : row_square_sums(reinterpret_cast<const uint16_t*>(orthogonal.data_ptr<at::BFloat16>()), rows, cols);
  // state = lerp(state, row mean square, 1 - beta2); row i of the direction
  // is O_i / (sqrt(state_i) + eps), all rows then rescaled so that the
  // direction's Frobenius norm is O's, which the row sums give without
  // another read: ||N||^2 = sum_i ||O_i||^2 / (sqrt(state_i) + eps)^2.
  float* second_moment = state.data_ptr<float>();
  const auto weight = static_cast<float>(1.0 - options.beta2);
  std::vector<double> root(static_cast<size_t>(rows));
  double squared_norm = 0, normalized_squared_norm = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const auto row = static_cast<size_t>(i);
    const auto mean_square = static_cast<float>(sums[row] / static_cast<double>(cols));
    second_moment[i] += weight * (mean_square - second_moment[i]);
    root[row] = std::sqrt(static_cast<double>(second_moment[i])) + options.eps;
    squared_norm += sums[row];
    normalized_squared_norm += sums[row] / (root[row] * root[row]);
  }
  // A zero update stays zero, as in normalize_neurons().
  const double rescale = std::sqrt(squared_norm) / std::max(std::sqrt(normalized_squared_norm), 1e-30);
  torch::Tensor factors = torch::empty({rows}, state.options());
  float* factor = factors.data_ptr<float>();
  for (int64_t i = 0; i < rows; ++i) factor[i] = static_cast<float>(rescale / root[static_cast<size_t>(i)]);
  return factors;
}

namespace {

// Whether Muon²'s or Muon²-F's buffers (if any) can be read and written in
// place by pass 1.
bool second_moment_fits(const MuonSlot& slot) {
  switch (slot.options->second_moment()) {
    case SecondMomentKind::kNone: return true;
    case SecondMomentKind::kFull: return fp32_cpu_contiguous(slot.second_moment.full);
    case SecondMomentKind::kFactored:
      return fp32_cpu_contiguous(slot.second_moment.row) && fp32_cpu_contiguous(slot.second_moment.col);
  }
  return false;
}

}  // namespace

bool fused_cpu_step_applies(const MuonSlot& slot, const MatrixView& view) {
  const MuonOptions& options = *slot.options;
  const auto ns_dtype = resolve_ns_dtype(options.ns_dtype(), slot.param.device());
  return options.fused() && slot.param.dim() == 2 && !view.batched && fp32_cpu_contiguous(slot.param) &&
         fp32_cpu_contiguous(slot.grad) && fp32_cpu_contiguous(slot.momentum_buffer) &&
         second_moment_fits(slot) && (!options.neuron_norm() || fp32_cpu_contiguous(slot.neuron_second_moment)) &&
         // The fused passes read rows as output neurons and blocks as out x in.
         !(view.transposed && (options.neuron_norm() || options.block_scale())) &&
         options.orthogonalize() && options.ns_batching() != NsBatching::kAlways &&
         (ns_dtype == torch::kBFloat16 || ns_dtype == torch::kFloat32);
}

namespace {

// NS of each head block of `update` (each normalized on its own), written
// back into `update`; block_scale multiplies each block by its own shape's
// scale and sets `scale` to 1, as the general path does.
void orthogonalize_head_blocks(torch::Tensor& update, const MuonSlot& slot, const HeadBlocks& blocks,
                               const NewtonSchulzConfig& config, double& scale) {
  const MuonOptions& options = *slot.options;
  const std::vector<torch::Tensor> gathered = gather_head_blocks(update, *slot.tag->heads, blocks);
  std::vector<torch::Tensor> orthogonal(gathered.size());
  // Blocks of one shape (a segment's) in one batched call: small blocks
  // keep the matmul busier together than one by one.
  std::vector<bool> done(gathered.size(), false);
  for (size_t first = 0; first < gathered.size(); ++first) {
    if (done[first]) continue;
    std::vector<size_t> same;
    for (size_t i = first; i < gathered.size(); ++i) {
      if (!done[i] && gathered[i].sizes() == gathered[first].sizes()) same.push_back(i), done[i] = true;
    }
    std::vector<torch::Tensor> stack;
    for (size_t i : same) stack.push_back(gathered[i]);
    torch::Tensor result = newton_schulz(torch::stack(stack), config);
    if (options.block_scale()) result.mul_(scale_factor(options.scale_rule(), result.size(1), result.size(2)));
    for (size_t k = 0; k < same.size(); ++k) orthogonal[same[k]] = result[static_cast<int64_t>(k)];
  }
  if (options.block_scale()) scale = 1.0;
  // Every block has been read (stacked into NS), so the update's storage is
  // free to take the results even where the blocks are views of it.
  scatter_head_blocks(update, *slot.tag->heads, blocks, orthogonal);
}

}  // namespace

namespace {

// Matrix `index` of a stack slot: views of its tensors in the view's
// [count, r, c] (the state's row and column factors in [count, r] and
// [count, c], NorMuon's in [count, out]), so the fused step writes through
// to the stack. Only for contiguous tensors (stack_tensors_contiguous),
// whose reshapes are views.
MuonSlot stack_matrix_slot(const MuonSlot& stack, const MatrixView& view, int64_t index) {
  const auto matrix = [&](const torch::Tensor& t) { return t.defined() ? view.of(t)[index] : t; };
  const auto rows_of = [&](const torch::Tensor& t, int64_t width) {
    return t.defined() ? t.reshape({view.count, width})[index] : t;
  };
  MuonSlot slot = stack;  // name, step, options, tag, owned, record_update
  slot.param = matrix(stack.param);
  slot.grad = matrix(stack.grad);
  slot.momentum_buffer = matrix(stack.momentum_buffer);
  slot.second_moment.full = matrix(stack.second_moment.full);
  slot.second_moment.row = rows_of(stack.second_moment.row, view.rows);
  slot.second_moment.col = rows_of(stack.second_moment.col, view.cols);
  slot.neuron_second_moment = rows_of(stack.neuron_second_moment, view.out_features());
  slot.recorded_update = torch::Tensor();
  return slot;
}

// Whether every tensor stack_matrix_slot views is contiguous fp32 on the
// CPU: a reshape of any other would be a copy, and the step would be lost.
bool stack_tensors_contiguous(const MuonSlot& slot) {
  for (const torch::Tensor* t : {&slot.param, &slot.grad, &slot.momentum_buffer, &slot.second_moment.full,
                                 &slot.second_moment.row, &slot.second_moment.col, &slot.neuron_second_moment}) {
    if (t->defined() && !fp32_cpu_contiguous(*t)) return false;
  }
  return slot.param.defined() && slot.grad.defined() && slot.momentum_buffer.defined();
}

}  // namespace

bool fused_cpu_stack_step_applies(const MuonSlot& slot, const MatrixView& view) {
  if (!view.batched || !slot.options->fused() || !stack_tensors_contiguous(slot)) return false;
  return fused_cpu_step_applies(stack_matrix_slot(slot, view, 0), {1, view.rows, view.cols, false, view.transposed});
}

void fused_cpu_stack_step(MuonSlot& slot, const MatrixView& view, double scale) {
  std::vector<torch::Tensor> recorded;
  for (int64_t i = 0; i < view.count; ++i) {
    MuonSlot matrix = stack_matrix_slot(slot, view, i);
    fused_cpu_step(matrix, scale);
    if (slot.record_update) recorded.push_back(matrix.recorded_update);
  }
  if (slot.record_update) slot.recorded_update = torch::stack(recorded).view(slot.param.sizes());
}

void fused_cpu_step(MuonSlot& slot, double scale, const std::optional<HeadBlocks>& blocks) {
  const MuonOptions& options = *slot.options;
  const NewtonSchulzConfig config = options.newton_schulz_config();
  torch::Tensor update =
      torch::empty(slot.param.sizes(), slot.param.options().dtype(resolve_ns_dtype(config.dtype, slot.param.device())));
  const double squared_norm =
      fused_momentum_update(slot.grad, slot.momentum_buffer, update, options.momentum(), options.momentum_kind(),
                            options.nesterov(), {&slot.second_moment, options.second_moment_options(), slot.step});
  torch::Tensor orthogonal;
  if (blocks) {
    orthogonalize_head_blocks(update, slot, *blocks, config, scale);
    orthogonal = update;
  } else {
    fused_scale(update, 1.0 / (std::sqrt(squared_norm) * config.schedule.norm_scale + config.schedule.eps));
    orthogonal = newton_schulz_iterations(update, config);
  }
  const torch::Tensor row_factor =
      options.neuron_norm()
          ? fused_neuron_factors(orthogonal, slot.neuron_second_moment, options.neuron_norm_options())
          : torch::Tensor();
  fused_decay_and_add(slot.param, orthogonal, 1.0 - options.lr() * options.weight_decay(), -options.lr() * scale,
                      row_factor);
  if (slot.record_update) {
    torch::Tensor direction = orthogonal.to(slot.param.scalar_type());
    if (row_factor.defined()) direction.mul_(row_factor.unsqueeze(1));
    slot.recorded_update = direction * scale;
  }
}

}  // namespace muonlab::optim
