// The exact polar factor msign(M) = U V^T of the thin SVD M = U S V^T,
// computed in float64: the reference that Newton-Schulz approximates.
#pragma once

#include <torch/torch.h>

namespace muonlab::analysis {

// msign(M) for M of shape [..., r, c], in float64. Singular values at or
// below max(r, c) * eps(float64) * s_max count as zero and map to zero, so
// a rank-deficient M gives a partial isometry of the same rank.
torch::Tensor polar_factor(const torch::Tensor& M);

// Singular values of M in float64, descending, shape [..., min(r, c)].
torch::Tensor singular_values(const torch::Tensor& M);

// Which singular values S (shape [..., min(r, c)], of an r x c matrix) count
// as nonzero: those above max(r, c) * eps(float64) * s_max. A bool mask.
torch::Tensor nonzero_singular_values(const torch::Tensor& S, int64_t rows, int64_t cols);

// Numerical rank with the same threshold as polar_factor, shape [...].
torch::Tensor numerical_rank(const torch::Tensor& M);

// Nuclear norm ||M||_* in float64, shape [...].
torch::Tensor nuclear_norm_of(const torch::Tensor& M);

}  // namespace muonlab::analysis
