// Muon's step on the CPU with its elementwise work in two passes over the
// state instead of about a dozen LibTorch ops (docs/design.md, Optimizers):
//
//   pass 1: momentum in place, the update U (Nesterov or not; divided by
//           Muon²'s sqrt(V_hat) + eps, its state advanced in the same
//           read) written straight in the NS dtype, and ||U||_F
//           accumulated on the way;
//   NS:     U scaled to norm 1, then the K iterations in U's own
//           orientation (newton_schulz_iterations: no transposed copies);
//           Group Muon: each head block of U gathered, normalized and
//           orthogonalized on its own, and scattered back;
//   pass 2: weight decay and the update, param = (1 - lr wd) param - lr s O,
//           reading O in the NS dtype (NorMuon: row i of O times a factor
//           from its EMA of row mean squares, taken in one read of O).
//
// The same arithmetic as the general step up to rounding (the norm is taken
// of U before its cast, the two momentum forms by one formula); tests hold
// the two paths together. Memory-bound passes dominate Muon's step beside
// the matmuls on the CPU, where the general path's ~15 passes over the fp32
// state cost about a fifth of the step (docs/benchmarks.md).
#pragma once

#include <torch/torch.h>

#include <optional>

#include "muonlab/optimizers/head_groups.h"
#include "muonlab/optimizers/matrix_view.h"
#include "muonlab/optimizers/muon_step.h"
#include "muonlab/optimizers/neuron_norm.h"
#include "muonlab/optimizers/second_moment.h"

namespace muonlab::optim {

// Whether `slot` takes the fused path: MuonOptions::fused, a CPU fp32 2-D
// parameter with contiguous fp32 gradient, momentum, second-moment and
// NorMuon buffers, Muon, Muon², Muon²-F, NorMuon or Group Muon,
// orthogonalized, NS in bf16 or fp32 and not batched with other matrices.
bool fused_cpu_step_applies(const MuonSlot& slot, const MatrixView& view);

// The whole step of one slot that fused_cpu_step_applies to; `scale` is the
// shape scale s(r, c), `blocks` Group Muon's head blocks of the slot
// (planned by the caller, which draws random groupings in slot order) or
// nullopt.
void fused_cpu_step(MuonSlot& slot, double scale, const std::optional<HeadBlocks>& blocks = std::nullopt);

// A stack of matrices (MoE experts' [E, r, c], nd_params "batch") stepped
// matrix by matrix through the fused step, each matrix's slot made of views
// of the stack's parameter, gradient and state: what the general path does
// to a stack, one matrix at a time, as it would to E separate matrices.
// Applies where the fused step would to each matrix on its own.
bool fused_cpu_stack_step_applies(const MuonSlot& slot, const MatrixView& view);
void fused_cpu_stack_step(MuonSlot& slot, const MatrixView& view, double scale);

// Muon²'s or Muon²-F's part of pass 1 (kind none: plain Muon): the state
// it advances in place (fp32, contiguous; the factored one for a matrix
// [r, c]), its options and the 1-based step being taken.
struct FusedSecondMoment {
  SecondMomentState* state = nullptr;
  SecondMomentOptions options;
  int64_t step = 1;
};

// Pass 1 on its own (exposed for tests): updates `momentum` in place from
// `grad` (ema: m = mu m + (1 - mu) g; sum: m = mu m + g), forms the update
// (Nesterov: lerp(g, m, mu) for ema, g + mu m for sum; else m), divides it
// by sqrt(V_hat) + eps where a second moment is given (its state advanced
// by g first, as precondition() does), writes it into `out` (bf16 or fp32,
// contiguous, grad's number of elements) and returns its squared Frobenius
// norm, taken in fp32 before the cast. Muon²-F reads g once more before
// the pass, for the row and column sums of g*g its estimate needs first.
double fused_momentum_update(const torch::Tensor& grad, torch::Tensor& momentum, torch::Tensor& out, double mu,
                             MomentumKind kind, bool nesterov, const FusedSecondMoment& second_moment = {});

// update *= factor in place (bf16 or fp32, contiguous), the product taken in
// fp32 and rounded once: the normalization before NS (exposed for tests).
void fused_scale(torch::Tensor& update, double factor);

// NorMuon between NS and pass 2 (exposed for tests): folds the row mean
// squares of `orthogonal` ([r, c], bf16 or fp32, contiguous) into `state`
// ([r], fp32) as normalize_neurons() does and returns, per row, the factor
// that turns O into NorMuon's direction: 1 / (sqrt(state_i) + eps) times
// the rescale to O's Frobenius norm. Reads O once.
torch::Tensor fused_neuron_factors(const torch::Tensor& orthogonal, torch::Tensor& state,
                                   const NeuronNormOptions& options);

// Pass 2 on its own: param = decay * param + alpha * update, `update` in
// bf16 or fp32 with param's number of elements, both contiguous; with a
// row factor ([r], fp32), row i takes alpha * row_factor[i].
void fused_decay_and_add(torch::Tensor& param, const torch::Tensor& update, double decay, double alpha,
                         const torch::Tensor& row_factor = {});

}  // namespace muonlab::optim
