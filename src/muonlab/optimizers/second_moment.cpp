#include "muonlab/optimizers/second_moment.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::optim {

const EnumNames<SecondMomentKind>& second_moment_kind_names() {
  static const EnumNames<SecondMomentKind> names{
      {SecondMomentKind::kNone, "none"}, {SecondMomentKind::kFull, "full"}, {SecondMomentKind::kFactored, "factored"}};
  return names;
}

SecondMomentKind parse_second_moment_kind(const std::string& name) {
  if (auto kind = find_enum(second_moment_kind_names(), name)) return *kind;
  fail("unknown second moment '{}'{}: expected none, full (Muon²) or factored (Muon²-F)", name,
       did_you_mean(name, enum_name_list(second_moment_kind_names())));
}

std::string to_string(SecondMomentKind kind) { return enum_name(second_moment_kind_names(), kind); }

const EnumNames<SecondMomentKind>& muon_variant_names() {
  static const EnumNames<SecondMomentKind> names{
      {SecondMomentKind::kNone, "muon"}, {SecondMomentKind::kFull, "muon2"}, {SecondMomentKind::kFactored, "muon2f"}};
  return names;
}

int64_t default_ns_steps(SecondMomentKind variant) { return variant == SecondMomentKind::kNone ? 5 : 3; }

void SecondMomentOptions::validate() const {
  // Written as !(good) so that NaN fails too.
  if (!(beta2 >= 0 && beta2 < 1)) fail("Muon² beta2 = {}: expected a number in [0, 1)", beta2);
  if (!(eps > 0 && std::isfinite(eps))) fail("Muon² eps = {}: expected a finite number > 0", eps);
}

namespace {

bool is_fp64(const torch::Tensor& t) { return t.defined() && t.scalar_type() == torch::kFloat64; }

// fp32 is enough for an EMA of squares; fp64 parameters (tests, analysis)
// keep their precision.
torch::Dtype state_dtype(const torch::Tensor& param) {
  return is_fp64(param) ? torch::kFloat64 : torch::kFloat32;
}

// The dtype precondition() divides in: never below fp32 (a bf16 update would
// lose the small V_hat entries), fp64 when anything involved is fp64.
torch::Dtype working_dtype(const torch::Tensor& update, const torch::Tensor& grad, const SecondMomentState& state) {
  const bool any_fp64 = is_fp64(update) || is_fp64(grad) || is_fp64(state.full) || is_fp64(state.row);
  return any_fp64 ? torch::kFloat64 : torch::kFloat32;
}

void check_same_shape(const char* what, const torch::Tensor& value, c10::IntArrayRef expected) {
  if (value.sizes() != expected) {
    fail("Muon² {} has shape {}, expected {} (the update's)", what, shape_string(value.sizes()),
         shape_string(expected));
  }
}

// The factored buffers of matrices [..., r, c]: row sums [..., r] and
// column sums [..., c] (leading dimensions are a stack of matrices).
std::vector<int64_t> factored_row_shape(c10::IntArrayRef sizes) { return sizes.slice(0, sizes.size() - 1).vec(); }

std::vector<int64_t> factored_col_shape(c10::IntArrayRef sizes) {
  auto shape = sizes.slice(0, sizes.size() - 2).vec();
  shape.push_back(sizes.back());
  return shape;
}

// Catches a state made for another kind or shape (a config changed between
// a save and a resume, say) before it silently broadcasts.
void check_state_fits(const SecondMomentState& state, const torch::Tensor& update, SecondMomentKind kind) {
  if (kind == SecondMomentKind::kFull) {
    if (!state.full.defined()) fail("Muon² state has no full second moment: made for another kind?");
    check_same_shape("state", state.full, update.sizes());
    return;
  }
  if (!state.row.defined() || !state.col.defined()) {
    fail("Muon²-F state has no row/column second moments: made for another kind?");
  }
  if (update.dim() < 2 || state.row.sizes() != factored_row_shape(update.sizes()) ||
      state.col.sizes() != factored_col_shape(update.sizes())) {
    fail("Muon²-F state of row shape {} and column shape {} does not fit an update of shape {}",
         shape_string(state.row.sizes()), shape_string(state.col.sizes()), shape_string(update.sizes()));
  }
}

// V = beta2 V + (1 - beta2) G*G, or the same for the row sums R and the
// column sums C of G*G. The EMA runs in the state's own dtype.
void accumulate(SecondMomentState& state, const torch::Tensor& grad_squared, const SecondMomentOptions& options) {
  const double keep = options.beta2, add = 1.0 - options.beta2;
  if (options.kind == SecondMomentKind::kFull) {
    state.full.mul_(keep).add_(grad_squared.to(state.full.scalar_type()), add);
    return;
  }
  fold_factored_square_sums(state, grad_squared.sum(-1), grad_squared.sum(-2), options);
}

// V_hat before bias correction, in `dtype`.
torch::Tensor second_moment_estimate(const SecondMomentState& state, SecondMomentKind kind, torch::Dtype dtype) {
  if (kind == SecondMomentKind::kFull) return state.full.to(dtype);
  // Adafactor's rank-one estimate R_i C_j / sum(C).
  const torch::Tensor row = state.row.to(dtype), col = state.col.to(dtype);
  return row.unsqueeze(-1) * col.unsqueeze(-2) / factored_column_total(col).unsqueeze(-1);
}

}  // namespace

// 1 - beta2^step: the EMA's weight after `step` updates from zero. The
// factored estimate has it once too: R and C each carry it, sum(C) divides
// one out.
double second_moment_bias_correction(int64_t step, const SecondMomentOptions& options) {
  if (!options.bias_correction) return 1.0;
  return 1.0 - std::pow(options.beta2, static_cast<double>(step));
}

void fold_factored_square_sums(SecondMomentState& state, const torch::Tensor& row_sums, const torch::Tensor& col_sums,
                               const SecondMomentOptions& options) {
  state.row.mul_(options.beta2).add_(row_sums.to(state.row.scalar_type()), 1.0 - options.beta2);
  state.col.mul_(options.beta2).add_(col_sums.to(state.col.scalar_type()), 1.0 - options.beta2);
}

torch::Tensor factored_column_total(const torch::Tensor& col) {
  // sum(R) = sum(C), so an all-zero gradient history has R = 0 too; clamping
  // sum(C) away from zero then gives V_hat = 0 (the update divides by eps
  // alone) instead of 0/0.
  return col.sum(-1, /*keepdim=*/true).clamp_min(std::numeric_limits<float>::min());
}

SecondMomentState make_second_moment_state(const torch::Tensor& param, const SecondMomentOptions& options) {
  SecondMomentState state;
  const auto tensor_options = param.options().dtype(state_dtype(param));
  if (options.kind == SecondMomentKind::kFull) state.full = torch::zeros(param.sizes(), tensor_options);
  if (options.kind == SecondMomentKind::kFactored) {
    if (param.dim() < 2) {
      fail("Muon²-F needs a matrix or a stack of matrices [..., r, c], got shape {}", shape_string(param.sizes()));
    }
    state.row = torch::zeros(factored_row_shape(param.sizes()), tensor_options);
    state.col = torch::zeros(factored_col_shape(param.sizes()), tensor_options);
  }
  return state;
}

torch::Tensor precondition(const torch::Tensor& update, const torch::Tensor& grad, SecondMomentState& state,
                           int64_t step, const SecondMomentOptions& options) {
  if (options.kind == SecondMomentKind::kNone) return update;
  if (step < 1) fail("Muon² step = {}: expected the 1-based step being taken", step);
  check_same_shape("gradient", grad, update.sizes());
  check_state_fits(state, update, options.kind);

  const torch::Dtype dtype = working_dtype(update, grad, state);
  accumulate(state, grad.to(dtype).square(), options);
  const torch::Tensor v_hat = second_moment_estimate(state, options.kind, dtype) /
                              second_moment_bias_correction(step, options);
  return (update.to(dtype) / (v_hat.sqrt() + options.eps)).to(update.scalar_type());
}

namespace {

// Whether every tensor of a precondition_all call is already in `dtype` on
// one device, so that one multi-tensor op can take each list.
bool lists_share_dtype_and_device(const std::vector<torch::Tensor>& updates, const std::vector<torch::Tensor>& grads,
                                  const std::vector<SecondMomentState*>& states, torch::Dtype dtype) {
  const torch::Device device = updates.front().device();
  const auto fits = [&](const torch::Tensor& t) {
    return !t.defined() || (t.scalar_type() == dtype && t.device() == device);
  };
  for (size_t i = 0; i < updates.size(); ++i) {
    if (!fits(updates[i]) || !fits(grads[i]) || !fits(states[i]->full) || !fits(states[i]->row) ||
        !fits(states[i]->col)) {
      return false;
    }
  }
  return true;
}

// accumulate() and second_moment_estimate() for a list, in their order of
// operations; returns V_hat before bias correction.
std::vector<torch::Tensor> accumulate_all(const std::vector<torch::Tensor>& grads,
                                          const std::vector<SecondMomentState*>& states,
                                          const SecondMomentOptions& options, torch::Dtype dtype) {
  const double keep = options.beta2, add = 1.0 - options.beta2;
  const auto squares = at::_foreach_mul(grads, grads);
  if (options.kind == SecondMomentKind::kFull) {
    std::vector<torch::Tensor> full;
    for (auto* state : states) full.push_back(state->full);
    at::_foreach_mul_(full, keep);
    at::_foreach_add_(full, squares, add);
    return full;
  }
  std::vector<torch::Tensor> rows, cols, row_sums, col_sums;
  for (size_t i = 0; i < states.size(); ++i) {
    rows.push_back(states[i]->row);
    cols.push_back(states[i]->col);
    row_sums.push_back(squares[i].sum(-1));
    col_sums.push_back(squares[i].sum(-2));
  }
  at::_foreach_mul_(rows, keep);
  at::_foreach_add_(rows, row_sums, add);
  at::_foreach_mul_(cols, keep);
  at::_foreach_add_(cols, col_sums, add);
  std::vector<torch::Tensor> estimates;
  for (auto* state : states) estimates.push_back(second_moment_estimate(*state, options.kind, dtype));
  return estimates;
}

}  // namespace

void precondition_all(std::vector<torch::Tensor>& updates, const std::vector<torch::Tensor>& grads,
                      const std::vector<SecondMomentState*>& states, int64_t step,
                      const SecondMomentOptions& options) {
  if (options.kind == SecondMomentKind::kNone || updates.empty()) return;
  if (grads.size() != updates.size() || states.size() != updates.size()) {
    fail("precondition_all got {} updates, {} gradients and {} states: expected one of each per matrix",
         updates.size(), grads.size(), states.size());
  }
  if (step < 1) fail("Muon² step = {}: expected the 1-based step being taken", step);
  for (size_t i = 0; i < updates.size(); ++i) {
    check_same_shape("gradient", grads[i], updates[i].sizes());
    check_state_fits(*states[i], updates[i], options.kind);
  }
  const torch::Dtype dtype = working_dtype(updates.front(), grads.front(), *states.front());
  if (!lists_share_dtype_and_device(updates, grads, states, dtype)) {
    for (size_t i = 0; i < updates.size(); ++i) updates[i] = precondition(updates[i], grads[i], *states[i], step, options);
    return;
  }
  // The same operations as precondition(): V_hat / bias correction, sqrt, + eps, then U / that.
  auto denominators = accumulate_all(grads, states, options, dtype);
  denominators = at::_foreach_div(denominators, second_moment_bias_correction(step, options));
  at::_foreach_sqrt_(denominators);
  at::_foreach_add_(denominators, options.eps);
  updates = at::_foreach_div(updates, denominators);
}

torch::Tensor normalized_direction(const torch::Tensor& update) {
  if (update.dim() < 2) {
    fail("normalized_direction needs matrices [..., r, c], got shape {}", shape_string(update.sizes()));
  }
  const int64_t rows = update.size(-2), cols = update.size(-1);
  const double orthogonal_norm = std::sqrt(static_cast<double>(std::min(rows, cols)));
  const torch::Tensor work = update.to(is_fp64(update) ? torch::kFloat64 : torch::kFloat32);
  // Clamped, not offset by an eps, so the result's norm is sqrt(min(r, c))
  // to rounding even for a small U; a zero U stays zero.
  const torch::Tensor norm =
      work.square().sum({-2, -1}, /*keepdim=*/true).sqrt().clamp_min(std::numeric_limits<float>::min());
  return (work * (orthogonal_norm / norm)).to(update.scalar_type());
}

int64_t second_moment_state_bytes(int64_t rows, int64_t cols, SecondMomentKind kind) {
  constexpr int64_t kFp32Bytes = 4;
  switch (kind) {
    case SecondMomentKind::kNone: return 0;
    case SecondMomentKind::kFull: return kFp32Bytes * rows * cols;
    case SecondMomentKind::kFactored: return kFp32Bytes * (rows + cols);
  }
  return 0;
}

void visit_second_moment_state(SecondMomentState& state, ParamStateVisitor& visitor) {
  if (state.full.defined()) visitor.tensor("second_moment", state.full);
  if (state.row.defined()) visitor.tensor("second_moment_row", state.row);
  if (state.col.defined()) visitor.tensor("second_moment_col", state.col);
}

}  // namespace muonlab::optim
