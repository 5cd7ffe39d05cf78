// The Muon² paper's instrument (docs/algorithms.md, Directional alignment):
// for a Muon input U and its Muon² form P = U / (sqrt(V_hat) + eps), how
// spread out the singular values are, and how well Newton-Schulz
// approximates each one's own polar factor after every step k,
// cos(NS_k(X), msign(X)) (alignment.h). The paper's claim is
// that P is better conditioned, so NS reaches a given alignment in fewer
// steps (3 instead of 5). `muonlab align` prints these rows.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "muonlab/optimizers/newton_schulz.h"

namespace muonlab::analysis {

// The nonzero singular values of one matrix. "Nonzero" uses polar_factor's
// threshold, so an exactly rank-deficient matrix reports the condition of
// the part msign keeps rather than infinity.
struct SpectrumStats {
  int64_t rank = 0;     // numerical rank
  double s_max = 0;
  double s_min = 0;     // smallest nonzero singular value
  double condition = 0; // s_max / s_min; NaN for the zero matrix
  // The 90th over the 10th percentile of the nonzero singular values
  // (linear interpolation): the spread of the bulk, which one tiny singular
  // value cannot dominate the way it dominates the condition number.
  double spread_p90_p10 = 0;
};

// For M of shape [r, c]; computed in float64.
SpectrumStats spectrum_stats(const torch::Tensor& M);

// One parameter (or test matrix): the Muon input U ("before") and the Muon²
// input P ("after"), each aligned to its own polar factor after k = 0..K
// steps of the same NS config.
struct AlignmentRow {
  std::string name;
  std::vector<int64_t> shape;
  SpectrumStats before;       // of U
  SpectrumStats after;        // of P
  std::vector<double> muon;   // cos(NS_k(U), msign(U)), k = 0..K
  std::vector<double> muon2;  // cos(NS_k(P), msign(P)), k = 0..K
};

// Fails unless U and P are matrices of the same shape.
AlignmentRow spectrum_alignment(const std::string& name, const torch::Tensor& muon_input,
                                const torch::Tensor& muon2_input, const optim::NewtonSchulzConfig& config);

// The mean over rows of curve k, for the muon or the muon2 curves; the rows
// must have curves of the same length.
enum class AlignmentMethod { kMuon, kMuon2 };
std::string to_string(AlignmentMethod method);  // "muon", "muon2"
const std::vector<double>& curve_of(const AlignmentRow& row, AlignmentMethod method);
std::vector<double> mean_curve(const std::vector<AlignmentRow>& rows, AlignmentMethod method);

// Which NS steps the table compares: Muon and Muon² after `muon2_steps`
// (the Muon² paper's 3), and Muon after `muon_steps` (its usual 5). Both are
// clamped to the curves' K.
struct AlignmentTableOptions {
  int64_t muon2_steps = 3;
  int64_t muon_steps = 5;
};

// One line per row plus a mean line: name, shape, rank, condition number and
// p90/p10 spread before and after, and the alignments of the options' steps.
std::string format_alignment_table(const std::vector<AlignmentRow>& rows, const AlignmentTableOptions& options);

// Every number, one line per row, method and k (tidy, for pandas or gnuplot):
// parameter,rows,cols,method,rank,condition,spread_p90_p10,s_max,s_min,k,alignment
std::string alignment_csv(const std::vector<AlignmentRow>& rows);

}  // namespace muonlab::analysis
