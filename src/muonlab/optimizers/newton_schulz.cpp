#include "muonlab/optimizers/newton_schulz.h"

#include "muonlab/core/native_bf16.h"

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

#include <algorithm>
#include <cmath>

#include "muonlab/core/errors.h"

namespace muonlab::optim {

const NsCoefficients& NsSchedule::step(int64_t k) const {
  TORCH_CHECK(!triples.empty(), "NsSchedule '", name, "' has no coefficients");
  const auto last = static_cast<int64_t>(triples.size()) - 1;
  return triples[static_cast<size_t>(std::min(k, last))];
}

bool NsSchedule::operator==(const NsSchedule& o) const {
  return name == o.name && triples == o.triples && norm_scale == o.norm_scale &&
         eps == o.eps;
}

NsSchedule ns_schedule(const std::string& name) {
  if (name == "jordan") {
    return {"jordan", {{3.4445, -4.7750, 2.0315}}, 1.0, 1e-7};
  }
  if (name == "taylor") {
    return {"taylor", {{1.875, -1.25, 0.375}}, 1.0, 1e-7};
  }
  if (name == "polar_express") {
    return {"polar_express",
            {{8.156554524902461, -22.48329292557795, 15.878769915207462},
             {4.042929935166739, -2.808917465908714, 0.5000178451051316},
             {3.8916678022926607, -2.772484153217685, 0.5060648178503393},
             {3.285753657755655, -2.3681294933425376, 0.46449024233003106},
             {2.3465413258596377, -1.7097828382687081, 0.42323551169305323}},
            1.02,
            1e-6};
  }
  fail("unknown Newton-Schulz coefficients '{}'{}: expected one of {}, or a list of (a, b, c) triples", name,
       did_you_mean(name, ns_preset_names()), fmt::join(ns_preset_names(), ", "));
}

const std::vector<std::string>& ns_preset_names() {
  static const std::vector<std::string> names{"jordan", "taylor", "polar_express"};
  return names;
}

NsSchedule ns_schedule_custom(std::vector<NsCoefficients> triples) {
  if (triples.empty()) fail("custom Newton-Schulz coefficients: the list is empty");
  return {"custom", std::move(triples), 1.0, 1e-7};
}

const EnumNames<NsDtype>& ns_dtype_names() {
  static const EnumNames<NsDtype> names{
      {NsDtype::kAuto, "auto"}, {NsDtype::kBFloat16, "bf16"}, {NsDtype::kFloat32, "fp32"}, {NsDtype::kFloat64, "fp64"}};
  return names;
}

NsDtype parse_ns_dtype(const std::string& name) {
  if (auto dtype = find_enum(ns_dtype_names(), name)) return *dtype;
  static const EnumNames<NsDtype> long_names{
      {NsDtype::kBFloat16, "bfloat16"}, {NsDtype::kFloat32, "float32"}, {NsDtype::kFloat64, "float64"}};
  if (auto dtype = find_enum(long_names, name)) return *dtype;
  const auto accepted = enum_name_list(ns_dtype_names());
  fail("unknown Newton-Schulz dtype '{}'{}: expected {}", name, did_you_mean(name, accepted), alternatives(accepted));
}

std::string to_string(NsDtype dtype) { return enum_name(ns_dtype_names(), dtype); }

torch::Dtype resolve_ns_dtype(NsDtype dtype, const torch::Device& device) {
  switch (dtype) {
    case NsDtype::kAuto: return has_native_bf16(device) ? torch::kBFloat16 : torch::kFloat32;
    case NsDtype::kBFloat16: return torch::kBFloat16;
    case NsDtype::kFloat32: return torch::kFloat32;
    case NsDtype::kFloat64: return torch::kFloat64;
  }
  return torch::kFloat32;
}

const EnumNames<NsMethod>& ns_method_names() {
  static const EnumNames<NsMethod> names{{NsMethod::kStandard, "standard"}, {NsMethod::kGram, "gram"}};
  return names;
}

NsMethod parse_ns_method(const std::string& name) {
  return parse_enum(ns_method_names(), name, "Newton-Schulz method");
}

std::string to_string(NsMethod method) { return enum_name(ns_method_names(), method); }

bool NewtonSchulzConfig::operator==(const NewtonSchulzConfig& o) const {
  return schedule == o.schedule && steps == o.steps && dtype == o.dtype && method == o.method &&
         gram_restart == o.gram_restart;
}

void NewtonSchulzConfig::validate() const {
  if (steps < 0) fail("ns_steps = {}: expected a count >= 0", steps);
  if (gram_restart < 1) fail("gram_restart = {}: expected steps between restarts >= 1", gram_restart);
  if (schedule.triples.empty()) {
    fail("Newton-Schulz coefficients '{}' list no triple", schedule.name);
  }
  for (const auto& triple : schedule.triples) {
    if (!std::isfinite(triple.a) || !std::isfinite(triple.b) || !std::isfinite(triple.c)) {
      fail("Newton-Schulz coefficients '{}' hold the triple ({}, {}, {}): expected finite numbers", schedule.name,
           triple.a, triple.b, triple.c);
    }
  }
  const auto listed = static_cast<int64_t>(schedule.triples.size());
  if (schedule.name == "custom" && listed > 1 && listed != steps) {
    fail("custom Newton-Schulz coefficients list {} triples but ns_steps = {}: "
         "give one triple per step, or a single triple to repeat",
         listed, steps);
  }
}

namespace {

// Where products with W = a I + Z take a in W's diagonal and run as plain
// bmm (IdentityPlus), not with a as the beta of baddbmm, and where the
// diagonal is added by a loop (add_to_diagonal). On the CPU in bf16, oneDNN's bmm
// runs 3-6% faster than its baddbmm of the same shape (docs/benchmarks.md),
// and rounding a + Z_ii to bf16 costs about what rounding Z_ii already does.
// In fp32 the gain is about 1% and the large diagonal term inside each dot
// product costs accuracy; on the GPU cuBLAS applies beta in its epilogue.
bool is_cpu_bf16(const torch::Tensor& Z) { return Z.device().is_cpu() && Z.scalar_type() == torch::kBFloat16; }

// a added to the diagonal of each matrix of a CPU bf16 batch, in fp32 and
// rounded once to nearest even (c10::BFloat16's conversion). A loop, not
// tensor ops: on the small matrices of CPU-sized models the three ops it
// would take (to fp32, add, copy back) cost up to a tenth of an iteration.
void add_to_cpu_bf16_diagonal(torch::Tensor& Z, float a) {
  auto* z = Z.data_ptr<at::BFloat16>();
  const int64_t matrix_stride = Z.stride(0), diagonal_stride = Z.stride(1) + Z.stride(2);
  for (int64_t k = 0; k < Z.size(0); ++k) {
    for (int64_t i = 0; i < Z.size(1); ++i) {
      at::BFloat16& entry = z[k * matrix_stride + i * diagonal_stride];
      entry = at::BFloat16(static_cast<float>(entry) + a);
    }
  }
}

// Z + a I on each matrix of a batch, in place. A reduced-precision diagonal
// is added in fp32 and rounded once: LibTorch 1.13's bf16 add_ of a scalar
// rounds the scalar to bf16 first, which moves Jordan's a = 3.4445 to 3.4375.
void add_to_diagonal(torch::Tensor& Z, double a) {
  if (is_cpu_bf16(Z)) {
    add_to_cpu_bf16_diagonal(Z, static_cast<float>(a));
    return;
  }
  auto diagonal = Z.diagonal(0, 1, 2);
  if (Z.scalar_type() == torch::kBFloat16 || Z.scalar_type() == torch::kHalf) {
    diagonal.copy_(diagonal.to(torch::kFloat32).add(a));
    return;
  }
  diagonal.add_(a);
}

// W = a I + Z for a batch of square Z, and products with it from either
// side: a P + Z P as one baddbmm, or, on the CPU in bf16, W P as a bmm once
// a is in W's diagonal.
class IdentityPlus {
 public:
  IdentityPlus(torch::Tensor Z, double a) : Z_(std::move(Z)), a_(a), folded_(is_cpu_bf16(Z_)) {
    if (folded_) add_to_diagonal(Z_, a_);
  }

  torch::Tensor times(const torch::Tensor& P) const {  // W P
    return folded_ ? torch::bmm(Z_, P) : torch::baddbmm(P, Z_, P, /*beta=*/a_, /*alpha=*/1.0);
  }
  torch::Tensor times_from_right(const torch::Tensor& P) const {  // P W
    return folded_ ? torch::bmm(P, Z_) : torch::baddbmm(P, P, Z_, /*beta=*/a_, /*alpha=*/1.0);
  }
  // W itself; the object is spent after it.
  torch::Tensor take_matrix() {
    if (!folded_) add_to_diagonal(Z_, a_);
    folded_ = true;
    return std::move(Z_);
  }

 private:
  torch::Tensor Z_;  // Z, or W where folded_
  double a_;
  bool folded_;
};

// One iteration on a batch X of shape [N, m, n] with m <= n: B = b A + c A A
// as one baddbmm, then X = a X + B X.
torch::Tensor ns_iteration(const torch::Tensor& X, const NsCoefficients& k) {
  const auto A = torch::bmm(X, X.transpose(1, 2));
  return IdentityPlus(torch::baddbmm(A, A, A, /*beta=*/k.b, /*alpha=*/k.c), k.a).times(X);
}

// The same iteration for a tall X [N, m, n] (m > n), multiplied from the
// right: (X X^T)^j X = X (X^T X)^j, so X = a X + X B with A = X^T X (n x n).
torch::Tensor ns_iteration_tall(const torch::Tensor& X, const NsCoefficients& k) {
  const auto A = torch::bmm(X.transpose(1, 2), X);
  return IdentityPlus(torch::baddbmm(A, A, A, /*beta=*/k.b, /*alpha=*/k.c), k.a).times_from_right(X);
}

// X [N, m, n] / (norm_scale ||X||_F + eps), matrix by matrix. LibTorch sums
// the squares of fp32 and bf16 entries in fp32, which overflows to inf once a
// norm passes about 1.8e19 although every entry is finite; dividing by it
// would zero the update without a word. Those matrices are normalized again
// from X 2^-100: a power of two scales exactly, so they round as the same
// matrix at a sane scale would, and no finite matrix's squares overflow
// after it (entries below 2^28, fewer than 2^72 of them). Entries it pushes
// below fp32's normal range are under 1e-27 of the norm. On the CPU the
// check costs nothing; on the GPU it would be a host sync per call, so there
// the repair is always computed (a few memory passes beside NS's matmuls)
// and selected.
torch::Tensor normalize_by_frobenius_norm(const torch::Tensor& X, const NsSchedule& schedule) {
  const auto norm = X.norm(2, {1, 2}, /*keepdim=*/true);
  auto normalized = X / (norm * schedule.norm_scale + schedule.eps);
  const auto overflowed = norm.isinf();
  if (X.device().is_cpu() && !overflowed.any().item<bool>()) return normalized;
  const auto scaled_down = X * std::ldexp(1.0, -100);
  // eps is left out: beside a norm past 1e19 it is nothing, beside the
  // scaled-down norm it would be a lot.
  const auto rescaled = scaled_down / (scaled_down.norm(2, {1, 2}, /*keepdim=*/true) * schedule.norm_scale);
  return torch::where(overflowed, rescaled, normalized);
}

// Gram Newton-Schulz on X [N, m, n] (m <= n), or on a tall X [N, n, m]
// multiplied from the right. Each step's polynomial W = a I + b R + c R^2
// of R = X X^T is a polynomial in the Gram matrix of the last restart, so
// the steps since then multiply into Q = W_j ... W_k (all of them commute)
// and X_k = Q X; R follows the step as W R W. A restart applies Q to X and
// computes R from the result, which drops what rounding has accumulated
// in R. Products with W_k are formed as in the standard form (IdentityPlus).
class GramNewtonSchulz {
 public:
  GramNewtonSchulz(torch::Tensor X, bool tall, const NewtonSchulzConfig& config)
      : X_(std::move(X)), tall_(tall), config_(config) {}

  // Runs config.steps >= 1 steps (uses_gram_form is false for none).
  torch::Tensor run(const NsStepObserver& observer) {
    R_ = gram(X_);
    for (int64_t k = 0; k < config_.steps; ++k) {
      if (k > 0 && k % config_.gram_restart == 0) restart();
      step(k);
      if (observer) observer(k + 1, apply(Q_, X_));
    }
    return apply(Q_, X_);
  }

 private:
  torch::Tensor gram(const torch::Tensor& X) const {
    return tall_ ? torch::bmm(X.transpose(1, 2), X) : torch::bmm(X, X.transpose(1, 2));
  }
  // Q X, or X Q for a tall X.
  torch::Tensor apply(const torch::Tensor& Q, const torch::Tensor& X) const {
    return tall_ ? torch::bmm(X, Q) : torch::bmm(Q, X);
  }

  void restart() {
    X_ = apply(Q_, X_);
    R_ = gram(X_);
  }

  void step(int64_t k) {
    const NsCoefficients& c = config_.schedule.step(k);
    IdentityPlus W(torch::baddbmm(R_, R_, R_, /*beta=*/c.b, /*alpha=*/c.c), c.a);  // a I + b R + c R^2
    // The next step needs R only if it does not restart.
    const bool next_restarts = (k + 1) % config_.gram_restart == 0;
    if (k + 1 < config_.steps && !next_restarts) R_ = W.times(W.times_from_right(R_));  // W R W
    const bool fresh = k % config_.gram_restart == 0;
    Q_ = fresh ? W.take_matrix() : W.times_from_right(Q_);  // Q W
  }

  torch::Tensor X_, R_, Q_;
  bool tall_;
  const NewtonSchulzConfig& config_;
};

// Matmul FLOPs of the Gram form on an m x n matrix (m <= n), counted along
// the same control flow as GramNewtonSchulz::run.
double gram_form_flops(double m, double n, const NewtonSchulzConfig& config) {
  const double rectangular = 2 * m * m * n, square = 2 * m * m * m;
  const int64_t r = config.gram_restart;
  double flops = rectangular;  // R = X X^T
  for (int64_t k = 0; k < config.steps; ++k) {
    if (k > 0 && k % r == 0) flops += 2 * rectangular;  // X = Q X, R = X X^T
    flops += square;                                     // Z
    if (k % r != 0) flops += square;                     // Q W
    if (k + 1 < config.steps && (k + 1) % r != 0) flops += 2 * square;  // W R W
  }
  if (config.steps > 0) flops += rectangular;  // Q X
  return flops;
}

}  // namespace

bool uses_gram_form(int64_t rows, int64_t cols, const NewtonSchulzConfig& config) {
  if (config.method != NsMethod::kGram || config.steps == 0) return false;
  const double m = static_cast<double>(std::min(rows, cols));
  const double n = static_cast<double>(std::max(rows, cols));
  return gram_form_flops(m, n, config) <= 0.9 * newton_schulz_flops(rows, cols, config.steps);
}

double newton_schulz_flops(int64_t rows, int64_t cols, const NewtonSchulzConfig& config) {
  if (!uses_gram_form(rows, cols, config)) return newton_schulz_flops(rows, cols, config.steps);
  return gram_form_flops(static_cast<double>(std::min(rows, cols)), static_cast<double>(std::max(rows, cols)),
                         config);
}

torch::Tensor newton_schulz_iterations(const torch::Tensor& X, const NewtonSchulzConfig& config) {
  config.validate();
  TORCH_CHECK(X.dim() == 2, "newton_schulz_iterations expects a matrix, got shape ", X.sizes());
  const bool tall = X.size(0) > X.size(1);
  auto Y = X.unsqueeze(0);
  if (uses_gram_form(X.size(0), X.size(1), config)) {
    Y = GramNewtonSchulz(Y, tall, config).run(nullptr);
  } else {
    for (int64_t k = 0; k < config.steps; ++k) {
      const auto& coefficients = config.schedule.step(k);
      Y = tall ? ns_iteration_tall(Y, coefficients) : ns_iteration(Y, coefficients);
    }
  }
  return Y.squeeze(0).contiguous();
}

torch::Tensor newton_schulz(const torch::Tensor& M, const NewtonSchulzConfig& config,
                            const NsStepObserver& observer) {
  config.validate();
  TORCH_CHECK(M.dim() >= 2, "newton_schulz expects a matrix or a batch of "
              "matrices, got shape ", M.sizes());
  const auto rows = M.size(-2);
  const auto cols = M.size(-1);
  const bool tall = rows > cols;
  const auto compute_dtype = resolve_ns_dtype(config.dtype, M.device());

  // Flatten batch dimensions and orient every matrix wide (m <= n) so that
  // A = X X^T is the small m x m Gram matrix.
  auto X = M.reshape({-1, rows, cols}).to(compute_dtype);
  if (tall) X = X.transpose(1, 2);
  X = normalize_by_frobenius_norm(X, config.schedule);

  const auto restore = [&](const torch::Tensor& Y) {
    auto out = tall ? Y.transpose(1, 2) : Y;
    return out.reshape(M.sizes());
  };
  if (observer) observer(0, restore(X));
  if (uses_gram_form(rows, cols, config)) {
    const auto observe = [&](int64_t k, const torch::Tensor& Y) { observer(k, restore(Y)); };
    X = GramNewtonSchulz(X, /*tall=*/false, config).run(observer ? NsStepObserver(observe) : nullptr);
  } else {
    for (int64_t k = 0; k < config.steps; ++k) {
      X = ns_iteration(X, config.schedule.step(k));
      if (observer) observer(k + 1, restore(X));
    }
  }
  return restore(X).to(M.scalar_type()).contiguous();
}

double newton_schulz_flops(int64_t rows, int64_t cols, int64_t steps) {
  const double m = static_cast<double>(std::min(rows, cols));
  const double n = static_cast<double>(std::max(rows, cols));
  return static_cast<double>(steps) * (4.0 * m * m * n + 2.0 * m * m * m);
}

}  // namespace muonlab::optim
