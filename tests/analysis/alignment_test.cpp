// Directional alignment cos(NS_k(M), msign(M)) against closed forms.
#include "muonlab/analysis/alignment.h"

#include <cmath>

#include "muonlab/analysis/polar_factor.h"
#include "ns_test_config.h"
#include "test_util.h"

namespace muonlab::analysis {
namespace {

using optim::NewtonSchulzConfig;
using testing::ill_conditioned;
using testing::random_matrix;

using testing::ns_config;

TEST(Alignment, StepZeroIsTheNuclearOverFrobeniusRatio) {
  // cos(M, msign(M)) = ||M||_* / (||M||_F sqrt(rank M)).
  const auto M = random_matrix(24, 36, 1);
  const auto curve = ns_alignment_curve(M, ns_config("jordan", 5));
  ASSERT_EQ(curve.size(), 6u);
  const double expected = nuclear_norm_of(M).item<double>() /
                          (M.norm().item<double>() * std::sqrt(24.0));
  EXPECT_NEAR(curve[0], expected, 1e-12);
}

TEST(Alignment, RisesWithEveryTaylorStep) {
  // Taylor's polynomial is increasing with p(x) > x on (0, 1): every
  // singular value moves monotonically towards 1.
  for (const auto& M : {random_matrix(32, 64, 2), ill_conditioned(48, 32, 1e4, 3)}) {
    const auto curve = ns_alignment_curve(M, ns_config("taylor", 8));
    for (size_t k = 1; k < curve.size(); ++k) {
      // Until it reaches 1 to rounding (well-conditioned inputs can, with
      // some BLAS libraries, within 8 steps); then it stays there.
      if (curve[k - 1] < 1 - 1e-12) {
        EXPECT_GT(curve[k], curve[k - 1]) << "step " << k;
      } else {
        EXPECT_NEAR(curve[k], 1.0, 1e-12) << "step " << k;
      }
    }
  }
}

TEST(Alignment, JordanRisesWhileSingularValuesClimb) {
  // Ill-conditioned: most singular values are still below the band after 5
  // steps, so every step improves the alignment.
  const auto hard = ns_alignment_curve(ill_conditioned(48, 32, 1e4, 3), ns_config("jordan", 5));
  for (size_t k = 1; k < hard.size(); ++k) EXPECT_GT(hard[k], hard[k - 1]) << "step " << k;
  EXPECT_GT(hard.back(), hard.front() + 0.3);
  // Random: the band [0.68, 1.21] is reached by step 3; after that 'jordan'
  // oscillates inside it (it does not converge to 1) and alignment stays high.
  const auto easy = ns_alignment_curve(random_matrix(32, 64, 2), ns_config("jordan", 8));
  for (size_t k = 1; k <= 3; ++k) EXPECT_GT(easy[k], easy[k - 1]) << "step " << k;
  for (size_t k = 3; k < easy.size(); ++k) EXPECT_GT(easy[k], 0.97) << "step " << k;
}

TEST(Alignment, TaylorReachesOne) {
  const auto curve = ns_alignment_curve(random_matrix(20, 30, 4), ns_config("taylor", 20));
  EXPECT_NEAR(curve.back(), 1.0, 1e-12);
}

TEST(Alignment, IllConditioningLowersAlignmentAtFewSteps) {
  // The premise of Muon^2: a worse-conditioned input is aligned worse after
  // the same number of steps.
  const auto good = ns_alignment_curve(ill_conditioned(48, 32, 10, 5), ns_config("jordan", 3));
  const auto bad = ns_alignment_curve(ill_conditioned(48, 32, 1e4, 5), ns_config("jordan", 3));
  EXPECT_GT(good.back(), bad.back());
}

TEST(Alignment, BatchedShape) {
  torch::manual_seed(6);
  const auto batch = torch::randn({3, 8, 12}, torch::kFloat64);
  const auto curves = ns_alignment(batch, ns_config("jordan", 4));
  ASSERT_EQ(curves.sizes(), torch::IntArrayRef({5, 3}));
  const auto single = ns_alignment_curve(batch[1], ns_config("jordan", 4));
  for (int64_t k = 0; k < 5; ++k) EXPECT_NEAR(curves[k][1].item<double>(), single[k], 1e-12);
}

}  // namespace
}  // namespace muonlab::analysis
