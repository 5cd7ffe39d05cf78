// Directional alignment of Newton-Schulz (the Muon² paper's measure;
// docs/algorithms.md, Directional alignment): after each step k,
// cos(NS_k(M), msign(M)) = <P, Q>_F / (||P||_F ||Q||_F), the quality of the
// approximation of the exact polar factor.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "muonlab/optimizers/newton_schulz.h"

namespace muonlab::analysis {

// Frobenius cosine of P and Q over the last two dimensions, float64, shape [...].
torch::Tensor frobenius_cosine(const torch::Tensor& P, const torch::Tensor& Q);

// Alignment after k = 0..K steps for M of shape [..., r, c]: a float64 tensor
// of shape [K + 1, ...]. Row 0 is the normalized input itself.
torch::Tensor ns_alignment(const torch::Tensor& M, const optim::NewtonSchulzConfig& config);

// The same for one matrix, as a vector of K + 1 numbers.
std::vector<double> ns_alignment_curve(const torch::Tensor& M,
                                       const optim::NewtonSchulzConfig& config);

}  // namespace muonlab::analysis
