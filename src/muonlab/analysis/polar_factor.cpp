#include "muonlab/analysis/polar_factor.h"

#include <algorithm>
#include <limits>
#include <tuple>

namespace muonlab::analysis {

// matrix_rank's rule.
torch::Tensor nonzero_singular_values(const torch::Tensor& S, int64_t rows,
                                      int64_t cols) {
  const double tol_factor = static_cast<double>(std::max(rows, cols)) *
                            std::numeric_limits<double>::epsilon();
  const auto s_max = std::get<0>(S.max(-1, /*keepdim=*/true));
  return S > s_max * tol_factor;
}

torch::Tensor polar_factor(const torch::Tensor& M) {
  TORCH_CHECK(M.dim() >= 2, "polar_factor expects a matrix, got shape ", M.sizes());
  const auto M64 = M.to(torch::kFloat64);
  torch::Tensor U, S, Vh;
  std::tie(U, S, Vh) = torch::linalg_svd(M64, /*full_matrices=*/false);
  const auto keep = nonzero_singular_values(S, M.size(-2), M.size(-1)).to(torch::kFloat64);
  return torch::matmul(U * keep.unsqueeze(-2), Vh);
}

torch::Tensor singular_values(const torch::Tensor& M) {
  return torch::linalg_svdvals(M.to(torch::kFloat64));
}

torch::Tensor numerical_rank(const torch::Tensor& M) {
  const auto S = singular_values(M);
  return nonzero_singular_values(S, M.size(-2), M.size(-1)).sum(-1);
}

torch::Tensor nuclear_norm_of(const torch::Tensor& M) { return singular_values(M).sum(-1); }

}  // namespace muonlab::analysis
