// The SVD polar factor against other definitions of the same object:
// M (M^T M)^(-1/2) by eigendecomposition, and ||M||_* = <M, msign(M)>.
#include "muonlab/analysis/polar_factor.h"

#include "test_util.h"

namespace muonlab::analysis {
namespace {

using testing::random_matrix;

// M (M^T M)^(-1/2) for M of full column rank, via the eigendecomposition
// of the symmetric M^T M: no SVD involved.
torch::Tensor polar_by_eigh(const torch::Tensor& M) {
  const auto gram = torch::matmul(M.t(), M);
  torch::Tensor eigenvalues, eigenvectors;
  std::tie(eigenvalues, eigenvectors) = torch::linalg_eigh(gram);
  const auto inv_sqrt =
      torch::matmul(eigenvectors * eigenvalues.rsqrt().unsqueeze(0), eigenvectors.t());
  return torch::matmul(M, inv_sqrt);
}

TEST(PolarFactor, EqualsTheInverseSquareRootFormula) {
  const auto tall = random_matrix(30, 12, 1);
  EXPECT_TENSOR_NEAR(polar_factor(tall), polar_by_eigh(tall), 1e-10);
  const auto wide = random_matrix(12, 30, 2);
  EXPECT_TENSOR_NEAR(polar_factor(wide), polar_by_eigh(wide.t()).t(), 1e-10);
}

TEST(PolarFactor, IsAnIsometryAndInFloat64) {
  const auto Q = polar_factor(random_matrix(16, 40, 3, torch::kFloat32));
  EXPECT_EQ(Q.scalar_type(), torch::kFloat64);
  EXPECT_TENSOR_NEAR(torch::matmul(Q, Q.t()), torch::eye(16, torch::kFloat64), 1e-12);
}

TEST(PolarFactor, MapsZeroSingularValuesToZero) {
  // Rank 3 by construction: a 20x3 times a 3x25 matrix.
  const auto M = torch::matmul(random_matrix(20, 3, 4), random_matrix(3, 25, 5));
  const auto Q = polar_factor(M);
  EXPECT_EQ(numerical_rank(M).item<int64_t>(), 3);
  const auto s = singular_values(Q);
  EXPECT_TENSOR_NEAR(s.slice(0, 0, 3), torch::ones({3}, torch::kFloat64), 1e-10);
  EXPECT_TENSOR_NEAR(s.slice(0, 3), torch::zeros({17}, torch::kFloat64), 1e-10);
  // ||M||_* = <M, msign(M)> holds for rank-deficient M too.
  EXPECT_NEAR(nuclear_norm_of(M).item<double>(), (M * Q).sum().item<double>(), 1e-9);
}

TEST(PolarFactor, WorksOnBatches) {
  torch::manual_seed(6);
  const auto batch = torch::randn({4, 10, 14}, torch::kFloat64);
  const auto Q = polar_factor(batch);
  for (int64_t i = 0; i < 4; ++i) EXPECT_TENSOR_NEAR(Q[i], polar_factor(batch[i]), 1e-12);
  EXPECT_EQ(nuclear_norm_of(batch).sizes(), torch::IntArrayRef({4}));
}

}  // namespace
}  // namespace muonlab::analysis
