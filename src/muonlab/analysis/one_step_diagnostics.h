// One-step descent comparison of Group Muon against whole-matrix Muon
// (docs/algorithms.md, One-step descent diagnostics). For a beta-smooth
// loss, a step of size eta along -O guarantees the decrease
// D(O) = eta <G, O> - (beta eta^2 / 2) ||O||_F^2.
// Orthogonalizing a weight in blocks (O_grp) instead of as one matrix (O_all)
// changes it by
//
//   D_grp - D_all = eta * gain - (beta eta^2 / 2) * cost
//   gain = <G, O_grp> - <G, O_all>          (whitening gain)
//   cost = ||O_grp||_F^2 - ||O_all||_F^2    (grouping-induced norm cost)
//
// With exact polar factors gain = sum_i ||G_i||_* - ||G||_* and
// cost = sum_i rank(G_i) - rank(G), both >= 0. This module measures both
// terms for one weight, from Newton-Schulz (what the optimizer applies) and
// from the exact polar factors. The caller cuts the blocks (for attention
// weights, optim::gather_head_blocks), so any partition works.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <optional>
#include <vector>

#include "muonlab/optimizers/head_groups.h"
#include "muonlab/optimizers/newton_schulz.h"

namespace muonlab::analysis {

// The two terms of D_grp - D_all for one weight.
struct OneStepTerms {
  double gain = 0;  // <G, O_grp> - <G, O_all>
  double cost = 0;  // ||O_grp||_F^2 - ||O_all||_F^2
};

struct OneStepDiagnostics {
  OneStepTerms newton_schulz;  // O from NS_K with the given config (what the optimizer applies)
  OneStepTerms exact;          // O from msign (float64 SVD): gain = sum_i ||G_i||_* - ||G||_*,
                               // cost = sum_i rank(G_i) - rank(G)
};

// Maps a batch of matrices [N, r, c] to their orthogonalized versions, same
// shape. Called once for the whole matrix and once per block shape.
using Orthogonalizer = std::function<torch::Tensor(const torch::Tensor& batch)>;

// Both terms for `whole` (G, or the momentum-mixed update U, of one weight)
// and `blocks`, a partition of its entries into sub-matrices, under any
// orthogonalizer. Blocks that share a shape (transposed pairs included: every
// block is oriented wide first, as Muon does) are orthogonalized in one
// batched call. Inputs are cast to float64; the sums are float64.
// Fails on a non-matrix input, an empty list, an empty block, or blocks whose
// element count differs from whole's.
OneStepTerms one_step_terms(const torch::Tensor& whole, const std::vector<torch::Tensor>& blocks,
                            const Orthogonalizer& orthogonalize);

// Both terms from NS_K (`config`, its dtype included: with kAuto on CPU the
// iteration runs in fp32, as in the optimizer) and from the exact polar factors.
OneStepDiagnostics one_step_diagnostics(const torch::Tensor& whole,
                                        const std::vector<torch::Tensor>& blocks,
                                        const optim::NewtonSchulzConfig& config);

// Both terms for the blocks Group Muon cuts `param` into with these settings
// (optim::plan_param_head_blocks), on its gradient (or update) G; nullopt
// where the weight stays one block (not grouped, or every head in one group).
std::optional<OneStepDiagnostics> grouped_one_step_diagnostics(
    const optim::TaggedParam& param, const torch::Tensor& G, const optim::GroupedProjections& projections,
    int64_t group_size, optim::GroupingRule rule, std::optional<torch::Generator> generator,
    const optim::NewtonSchulzConfig& config);

// Predicted change of the guaranteed decrease, D_grp - D_all, for step eta and
// smoothness beta: eta * gain - (beta eta^2 / 2) * cost. Positive: grouping wins.
double descent_difference(const OneStepTerms& terms, double eta, double beta);

}  // namespace muonlab::analysis
