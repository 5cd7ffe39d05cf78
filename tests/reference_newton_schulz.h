// The tests' reference Newton-Schulz, written out from the equations
// (docs/algorithms.md, Newton-Schulz) rather than taken from the library:
// Keller Jordan's quintic (a, b, c) = (3.4445, -4.7750, 2.0315), Frobenius
// normalization with eps 1e-7, tall matrices iterated as their transpose.
// Compute in float64 to compare against the library's fp64 path.
#pragma once

#include <torch/torch.h>

namespace muonlab::testing {

inline torch::Tensor reference_newton_schulz(const torch::Tensor& U, int64_t steps = 5) {
  const double a = 3.4445, b = -4.7750, c = 2.0315;
  const bool tall = U.size(0) > U.size(1);
  auto X = tall ? U.t() : U;
  X = X / (X.norm() + 1e-7);
  for (int64_t k = 0; k < steps; ++k) {
    const auto A = torch::matmul(X, X.t());
    X = a * X + torch::matmul(b * A + c * torch::matmul(A, A), X);
  }
  return tall ? X.t() : X;
}

}  // namespace muonlab::testing
