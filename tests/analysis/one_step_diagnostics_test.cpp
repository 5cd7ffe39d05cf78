// One-step descent diagnostics of Group Muon on matrices built with known
// nuclear norms and ranks: with exact polar factors the whitening gain is
// sum_i ||G_i||_* - ||G||_* and the norm cost sum_i rank(G_i) - rank(G).
#include "muonlab/analysis/one_step_diagnostics.h"

#include <cmath>
#include <sstream>

#include "muonlab/analysis/polar_factor.h"
#include "ns_test_config.h"
#include "test_util.h"

namespace muonlab::analysis {
namespace {

using optim::NewtonSchulzConfig;
using testing::error_message;
using testing::matrix_with_singular_values;
using testing::random_matrix;
using testing::random_orthonormal;

using testing::ns_config;

torch::Tensor values(std::vector<double> v) {
  return torch::tensor(v, torch::kFloat64);
}

// U diag(s) V^T from given factors.
torch::Tensor from_factors(const torch::Tensor& U, const torch::Tensor& s, const torch::Tensor& V) {
  return torch::matmul(U * s.unsqueeze(0), V.t());
}

std::vector<torch::Tensor> split_rows(const torch::Tensor& M, std::vector<int64_t> sizes) {
  return M.split_with_sizes(sizes, 0);
}

std::vector<torch::Tensor> split_cols(const torch::Tensor& M, std::vector<int64_t> sizes) {
  return M.split_with_sizes(sizes, 1);
}

// sum_i ||G_i||_* - ||G||_* through torch's own nuclear norm, a route that
// shares nothing with polar_factor.
double nuclear_norm_gain(const torch::Tensor& whole, const std::vector<torch::Tensor>& blocks) {
  double gain = -torch::nuclear_norm(whole).item<double>();
  for (const auto& b : blocks) gain += torch::nuclear_norm(b).item<double>();
  return gain;
}

TEST(OneStepDiagnostics, BlocksSharingTheirRowSpaceCostTheirExtraRank) {
  // G_1 = U_1 diag(s_1) V^T and G_2 = U_2 diag(s_2) V^T stacked: the whole is
  // [U_1 S_1; U_2 S_2] V^T, of rank 2, and its Gram matrix S_1^2 + S_2^2 is
  // diagonal, so its singular values are sqrt(s_1j^2 + s_2j^2).
  const auto V = random_orthonormal(12, 2, 1);
  const auto s1 = values({3.0, 1.0});
  const auto s2 = values({2.0, 0.5});
  const auto G1 = from_factors(random_orthonormal(6, 2, 2), s1, V);
  const auto G2 = from_factors(random_orthonormal(6, 2, 3), s2, V);
  const auto whole = torch::cat({G1, G2}, 0);

  const double whole_nuclear = std::sqrt(3.0 * 3.0 + 2.0 * 2.0) + std::sqrt(1.0 + 0.25);
  const double expected_gain = (3.0 + 1.0) + (2.0 + 0.5) - whole_nuclear;
  const auto terms = one_step_diagnostics(whole, {G1, G2}, ns_config("jordan", 5)).exact;
  EXPECT_NEAR(terms.gain, expected_gain, 1e-10);
  EXPECT_NEAR(terms.cost, 2.0 + 2.0 - 2.0, 1e-10);
  EXPECT_NEAR(terms.gain, nuclear_norm_gain(whole, {G1, G2}), 1e-10);
}

TEST(OneStepDiagnostics, BlocksWithOrthogonalSpacesGainAndCostNothing) {
  // Row blocks with orthogonal row spaces (Q/K/V-like) and column blocks with
  // orthogonal column spaces (O-like): the whole's SVD is the union of the
  // blocks', so ||G||_* = sum_i ||G_i||_* and rank(G) = sum_i rank(G_i).
  const auto V = random_orthonormal(12, 5, 4);
  const auto G1 = from_factors(random_orthonormal(6, 2, 5), values({4.0, 0.3}), V.slice(1, 0, 2));
  const auto G2 = from_factors(random_orthonormal(6, 3, 6), values({2.0, 1.0, 0.1}),
                               V.slice(1, 2, 5));
  const auto row_terms =
      one_step_diagnostics(torch::cat({G1, G2}, 0), {G1, G2}, ns_config("jordan", 5)).exact;
  EXPECT_NEAR(row_terms.gain, 0.0, 1e-10);
  EXPECT_NEAR(row_terms.cost, 0.0, 1e-10);

  const std::vector<torch::Tensor> cols = {G1.t(), G2.t()};
  const auto col_terms =
      one_step_diagnostics(torch::cat(cols, 1), cols, ns_config("jordan", 5)).exact;
  EXPECT_NEAR(col_terms.gain, 0.0, 1e-10);
  EXPECT_NEAR(col_terms.cost, 0.0, 1e-10);
}

TEST(OneStepDiagnostics, ExactTermsAreTheNuclearNormAndRankIdentities) {
  // Random matrices, whose ranks are known: a Gaussian r x c matrix has rank
  // min(r, c), a product through k dimensions rank k. Each case lists the
  // blocks and the expected cost sum_i rank(G_i) - rank(G); the gain is
  // checked against torch's nuclear norm and must be >= 0.
  struct Case {
    std::string name;
    torch::Tensor whole;
    std::vector<torch::Tensor> blocks;
    double cost;
  };
  std::vector<Case> cases;
  for (uint64_t seed = 10; seed < 13; ++seed) {
    const auto G = random_matrix(16, 12, seed);
    cases.push_back({"4 row blocks of 4x12", G, split_rows(G, {4, 4, 4, 4}), 4 * 4 - 12});
    cases.push_back({"row blocks 4, 4, 8", G, split_rows(G, {4, 4, 8}), 4 + 4 + 8 - 12});
    cases.push_back({"column blocks 4, 8", G, split_cols(G, {4, 8}), 4 + 8 - 12});
    cases.push_back({"3 column blocks of 16x4", G, split_cols(G, {4, 4, 4}), 3 * 4 - 12});
    const auto low_rank = torch::matmul(random_matrix(16, 3, seed + 100),
                                        random_matrix(3, 12, seed + 200));
    cases.push_back({"rank 3, 4 row blocks", low_rank, split_rows(low_rank, {4, 4, 4, 4}),
                     4 * 3 - 3});
    cases.push_back({"rank 3, column blocks 2, 10", low_rank, split_cols(low_rank, {2, 10}),
                     2 + 3 - 3});
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto terms = one_step_diagnostics(c.whole, c.blocks, ns_config("jordan", 5)).exact;
    EXPECT_NEAR(terms.gain, nuclear_norm_gain(c.whole, c.blocks), 1e-10);
    EXPECT_NEAR(terms.cost, c.cost, 1e-10);
    EXPECT_GE(terms.gain, -1e-12);
    EXPECT_GE(terms.cost, -1e-12);
  }
}

TEST(OneStepDiagnostics, ColumnBlocksOfFullRankCanGainWithoutCost) {
  // Ranks add up (cost 0) but the column spaces overlap, so the blocks'
  // nuclear norms sum to more than the whole's: grouping is a pure win here.
  const auto G = random_matrix(16, 12, 20);
  const auto terms = one_step_diagnostics(G, split_cols(G, {6, 6}), ns_config("jordan", 5)).exact;
  EXPECT_NEAR(terms.cost, 0.0, 1e-10);
  EXPECT_GT(terms.gain, 0.1);
}

TEST(OneStepDiagnostics, OneBlockEqualToTheWholeChangesNothing) {
  for (const auto& G : {random_matrix(12, 20, 30), random_matrix(20, 12, 31),
                        testing::ill_conditioned(16, 16, 1e3, 32)}) {
    for (const auto dtype : {optim::NsDtype::kFloat64, optim::NsDtype::kFloat32}) {
      const auto d = one_step_diagnostics(G, {G}, ns_config("jordan", 5, dtype));
      // fp32 NS of the block and of the whole may run through different
      // BLAS kernels (MKL does; OpenBLAS gives the same bits).
      const double ns_tolerance = dtype == optim::NsDtype::kFloat64 ? 1e-12 : 1e-4;
      EXPECT_NEAR(d.newton_schulz.gain, 0.0, ns_tolerance);
      EXPECT_NEAR(d.newton_schulz.cost, 0.0, ns_tolerance);
      EXPECT_NEAR(d.exact.gain, 0.0, 1e-12);
      EXPECT_NEAR(d.exact.cost, 0.0, 1e-12);
    }
  }
}

// |NS term - exact term| for K = steps, on a cond-10 24x16 matrix in 3 row blocks.
struct TermErrors {
  double gain = 0, cost = 0;
};
TermErrors ns_error(const std::string& preset, int64_t steps, std::ostream& report) {
  const auto s = torch::logspace(0, -1, 16, 10.0, torch::kFloat64);
  const auto G = matrix_with_singular_values(24, 16, s, 40);
  const auto d = one_step_diagnostics(G, split_rows(G, {8, 8, 8}), ns_config(preset, steps));
  const TermErrors e{std::abs(d.newton_schulz.gain - d.exact.gain),
                     std::abs(d.newton_schulz.cost - d.exact.cost)};
  report << preset << " K=" << steps << ": gain " << d.newton_schulz.gain << " (exact "
         << d.exact.gain << ", err " << e.gain << "), cost " << d.newton_schulz.cost
         << " (exact " << d.exact.cost << ", err " << e.cost << ")\n";
  return e;
}

TEST(OneStepDiagnostics, NewtonSchulzTermsApproachTheExactOnesAsStepsGrow) {
  // Taylor's quintic sends every nonzero singular value to 1, so the NS
  // terms reach the exact ones once the smallest singular value has
  // converged (not monotonically: an early step can overshoot the cost).
  // Polar Express converges fast, but its last triple oscillates near 1
  // rather than converging, so it only gets close.
  std::ostringstream report;
  const auto taylor_early = ns_error("taylor", 2, report);
  EXPECT_GT(taylor_early.gain, 1e-2);
  for (const int64_t steps : {8, 16, 32}) {
    const auto e = ns_error("taylor", steps, report);
    EXPECT_LT(e.gain, 1e-9) << "taylor K=" << steps;
    EXPECT_LT(e.cost, 1e-9) << "taylor K=" << steps;
  }

  const auto pe_one = ns_error("polar_express", 1, report);
  const auto pe_five = ns_error("polar_express", 5, report);
  EXPECT_LT(pe_five.gain, pe_one.gain / 10);
  EXPECT_LT(pe_five.cost, pe_one.cost / 10);
  EXPECT_LT(pe_five.gain, 0.1);
  EXPECT_LT(pe_five.cost, 2.0);
  std::cout << report.str();
  RecordProperty("convergence", report.str());
}

TEST(OneStepDiagnostics, Fp32NewtonSchulzAgreesWithFp64) {
  // The iteration in fp32 (auto's choice on CPUs without bf16); the sums
  // stay float64, so only the iteration's rounding shows.
  const auto G = random_matrix(24, 16, 50);
  const auto blocks = split_rows(G, {8, 8, 8});
  const auto fp64 = one_step_diagnostics(G, blocks, ns_config("jordan", 5)).newton_schulz;
  const auto fp32 =
      one_step_diagnostics(G, blocks, ns_config("jordan", 5, optim::NsDtype::kFloat32)).newton_schulz;
  EXPECT_NEAR(fp32.gain, fp64.gain, 1e-4);
  EXPECT_NEAR(fp32.cost, fp64.cost, 1e-4);
}

TEST(OneStepDiagnostics, DescentDifferenceIsTheHandFormula) {
  // eta * gain - (beta eta^2 / 2) * cost.
  EXPECT_NEAR(descent_difference({0.3, 2.0}, 0.1, 4.0), 0.03 - 0.04, 1e-15);
  EXPECT_NEAR(descent_difference({0.3, 2.0}, 0.01, 4.0), 0.003 - 0.0004, 1e-15);
  EXPECT_EQ(descent_difference({0.3, 2.0}, 0.1, 0.0), 0.3 * 0.1);
}

TEST(OneStepDiagnostics, DescentDifferenceEqualsTheGuaranteedDecreases) {
  // D(O) = eta <G, O> - (beta eta^2 / 2) ||O||_F^2 evaluated on the
  // assembled O_grp and on O_all: their difference is descent_difference.
  const auto G = random_matrix(16, 12, 60);
  const auto blocks = split_rows(G, {4, 4, 8});
  std::vector<torch::Tensor> block_factors;
  for (const auto& b : blocks) block_factors.push_back(polar_factor(b));
  const auto O_grp = torch::cat(block_factors, 0);
  const auto O_all = polar_factor(G);
  const double eta = 0.05, beta = 3.0;
  const auto decrease = [&](const torch::Tensor& O) {
    return eta * (G * O).sum().item<double>() -
           0.5 * beta * eta * eta * O.square().sum().item<double>();
  };
  const auto terms = one_step_diagnostics(G, blocks, ns_config("jordan", 5)).exact;
  EXPECT_NEAR(descent_difference(terms, eta, beta), decrease(O_grp) - decrease(O_all), 1e-12);
}

TEST(OneStepDiagnostics, BatchesBlocksThatShareAShapeTransposedPairsIncluded) {
  // An 8x12 matrix cut into its left 8x4 columns and two 4x8 row blocks of
  // the rest: oriented wide, all three blocks are 4x8 and share one call.
  const auto G = random_matrix(8, 12, 70);
  const std::vector<torch::Tensor> blocks = {G.slice(1, 0, 4), G.slice(1, 4, 12).slice(0, 0, 4),
                                             G.slice(1, 4, 12).slice(0, 4, 8)};
  std::vector<std::vector<int64_t>> calls;
  const auto terms = one_step_terms(G, blocks, [&](const torch::Tensor& batch) {
    calls.push_back(batch.sizes().vec());
    return polar_factor(batch);
  });
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], (std::vector<int64_t>{1, 8, 12}));
  EXPECT_EQ(calls[1], (std::vector<int64_t>{3, 4, 8}));
  EXPECT_NEAR(terms.gain, nuclear_norm_gain(G, blocks), 1e-10);
  EXPECT_NEAR(terms.cost, 3 * 4 - 8, 1e-10);
}

TEST(OneStepDiagnostics, RejectsBlocksThatDoNotPartitionTheMatrix) {
  const auto G = random_matrix(8, 12, 80);
  const auto config = ns_config("jordan", 5);
  EXPECT_CONTAINS(error_message([&] { one_step_diagnostics(G, {}, config); }), "no blocks");
  EXPECT_CONTAINS(error_message([&] { one_step_diagnostics(G, {G.slice(0, 0, 4)}, config); }),
                  "the 1 blocks hold 48 entries but the whole [8, 12] matrix has 96");
  EXPECT_CONTAINS(error_message([&] {
                    one_step_diagnostics(G, {G, torch::zeros({0, 12}, torch::kFloat64)}, config);
                  }),
                  "block 1 of shape [0, 12] is empty");
  EXPECT_CONTAINS(error_message([&] { one_step_diagnostics(G.unsqueeze(0), {G}, config); }),
                  "the whole matrix must be 2-D, got shape [1, 8, 12]");
  EXPECT_CONTAINS(error_message([&] { one_step_diagnostics(G, {G.flatten()}, config); }),
                  "block 0 must be 2-D, got shape [96]");
}

}  // namespace
}  // namespace muonlab::analysis
