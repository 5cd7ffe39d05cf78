// Muon² and Muon²-F (docs/algorithms.md, Muon² and Muon²-F): an Adam-style
// second moment of the gradient divides Muon's momentum-mixed update
// elementwise before Newton-Schulz, evening out the spectrum so fewer NS
// steps reach the same alignment with the polar factor. Muon²-F keeps only
// row and column sums of G*G (Adafactor's factorization), O(r + c) memory
// instead of O(r c).
// Also the "no orthogonalization" ablation of Mehta et al.'s Muon study
// (docs/algorithms.md, Muon), which replaces NS_K by a rescaling.
//
// Standalone on purpose: Muon calls precondition() between momentum and NS
// and keeps a SecondMomentState per matrix next to its momentum buffer.
#pragma once

#include <torch/torch.h>

#include <vector>

#include <cstdint>
#include <string>

#include "muonlab/core/enum_names.h"
#include "muonlab/optimizers/param_state_io.h"

namespace muonlab::optim {

enum class SecondMomentKind {
  kNone,      // Muon
  kFull,      // Muon²: V = EMA of G*G, elementwise
  kFactored,  // Muon²-F: EMAs of the row and column sums of G*G
};
// "none", "full", "factored"; anything else fails naming the value and the
// choices.
const EnumNames<SecondMomentKind>& second_moment_kind_names();  // "none", "full", "factored"
SecondMomentKind parse_second_moment_kind(const std::string& name);

// The Muon family by name, as the trainer's optimizer.name and the Python
// classes call it: "muon" (no second moment), "muon2" (full: Muon²),
// "muon2f" (factored: Muon²-F).
const EnumNames<SecondMomentKind>& muon_variant_names();
// Newton-Schulz steps a variant takes unless told: 5 for Muon, 3 for Muon²
// and Muon²-F (the Muon² paper's K).
int64_t default_ns_steps(SecondMomentKind variant);
std::string to_string(SecondMomentKind kind);

struct SecondMomentOptions {
  SecondMomentKind kind = SecondMomentKind::kNone;
  double beta2 = 0.95;
  double eps = 1e-8;
  bool bias_correction = true;
  // Fails naming the field and value (beta2 outside [0, 1), eps <= 0 or not
  // finite).
  void validate() const;
};

// One r x c matrix's state: `full` (r x c) for kFull, `row` (r) and `col`
// (c) for kFactored (with leading stack dimensions for a stack of
// matrices); the others undefined. Kept in fp32 (fp64 for fp64
// parameters) on the parameter's device.
struct SecondMomentState {
  torch::Tensor full;
  torch::Tensor row;
  torch::Tensor col;
};

// Zeros for the buffers `options.kind` uses. kFactored needs a matrix
// [r, c] (buffers [r] and [c]) or a stack of them [..., r, c] (buffers
// [..., r] and [..., c]), and fails naming the shape otherwise; kFull takes
// any shape.
SecondMomentState make_second_moment_state(const torch::Tensor& param, const SecondMomentOptions& options);

// 1 - beta2^step when options.bias_correction (the EMA's weight after
// `step` updates from zero), else 1: what V (or R and C) is divided by.
double second_moment_bias_correction(int64_t step, const SecondMomentOptions& options);

// Muon²-F's EMA step from this gradient's sums of G*G over each row
// ([..., r]) and each column ([..., c]): R = beta2 R + (1 - beta2) row_sums,
// and the same for C, in the state's dtype.
void fold_factored_square_sums(SecondMomentState& state, const torch::Tensor& row_sums, const torch::Tensor& col_sums,
                               const SecondMomentOptions& options);

// sum(C) over the last dimension (kept), clamped away from zero: what
// Muon²-F's estimate R_i C_j / sum(C) divides by.
torch::Tensor factored_column_total(const torch::Tensor& col);

// Folds grad*grad into `state` (EMA with beta2) and returns
// update / (sqrt(V_hat) + eps) in update's dtype. V_hat is V (kFull) or
// R_i C_j / sum(C) (kFactored), divided by 1 - beta2^step when
// bias_correction; `step` is the 1-based step being taken. Computes in fp32,
// or fp64 when update, grad or state is fp64. kNone returns `update` itself
// and leaves `state` alone. Fails when `state` was not made for
// `options.kind` and this shape, or when step < 1.
torch::Tensor precondition(const torch::Tensor& update, const torch::Tensor& grad, SecondMomentState& state,
                           int64_t step, const SecondMomentOptions& options);

// precondition() of many updates that share `options` and `step` (one
// optimizer step's matrices), updates[i] replaced by its preconditioned
// form. The elementwise work runs as multi-tensor (_foreach) ops, a few
// launches for the whole list on a GPU instead of a chain per matrix; on the
// CPU the result is precondition()'s bit for bit. Lists that do not share
// one working dtype and device go through precondition() one by one.
void precondition_all(std::vector<torch::Tensor>& updates, const std::vector<torch::Tensor>& grads,
                      const std::vector<SecondMomentState*>& states, int64_t step,
                      const SecondMomentOptions& options);

// The ablation without orthogonalization: U sqrt(min(r, c)) / ||U||_F over
// the last two dimensions (leading ones are a batch), the Frobenius norm of
// an r x c orthogonal matrix in the momentum's own direction. A zero U stays
// zero. Returns update's dtype.
torch::Tensor normalized_direction(const torch::Tensor& update);

// Bytes of state kept for an r x c matrix (fp32): 4 r c, 4 (r + c) or 0.
int64_t second_moment_state_bytes(int64_t rows, int64_t cols, SecondMomentKind kind);

// Lists the buffers `state` holds ("second_moment", "second_moment_row",
// "second_moment_col"; undefined ones are skipped) so an optimizer's
// VisitableParamState::visit can save, load and shape-check them by name.
void visit_second_moment_state(SecondMomentState& state, ParamStateVisitor& visitor);

}  // namespace muonlab::optim
