// The Gram form of Newton-Schulz against the standard form, which
// newton_schulz_test.cpp holds against the scalar polynomial on the singular
// values and the SVD polar factor: in float64 the two must agree to
// rounding (they are the same polynomial in X X^T applied to X), and in
// bf16 the Gram form may not drift further from the float64 result than the
// standard form does by more than a small margin.
#include <cmath>
#include <vector>

#include "muonlab/optimizers/newton_schulz.h"
#include "ns_scalar_reference.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using testing::error_message;
using testing::ill_conditioned;
using testing::random_matrix;

NewtonSchulzConfig gram_config(const std::string& preset, int64_t steps, int64_t restart,
                               NsDtype dtype = NsDtype::kFloat64) {
  NewtonSchulzConfig config;
  config.schedule = ns_schedule(preset);
  config.steps = steps;
  config.dtype = dtype;
  config.method = NsMethod::kGram;
  config.gram_restart = restart;
  return config;
}

NewtonSchulzConfig standard_twin(NewtonSchulzConfig config) {
  config.method = NsMethod::kStandard;
  return config;
}

double gram_relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  const auto e = expected.to(torch::kFloat64);
  return ((actual.to(torch::kFloat64) - e).norm() / e.norm()).item<double>();
}

TEST(GramNewtonSchulz, EqualsTheStandardFormInFloat64) {
  const auto wide = random_matrix(16, 64, 1);
  const auto tall = random_matrix(80, 16, 2);
  for (const std::string preset : {"jordan", "polar_express"}) {
    for (const int64_t steps : {2, 3, 5, 7}) {
      for (const int64_t restart : {2, 3, 100}) {
        SCOPED_TRACE(preset + ", K = " + std::to_string(steps) + ", restart every " + std::to_string(restart));
        const auto gram = gram_config(preset, steps, restart);
        ASSERT_TRUE(uses_gram_form(16, 64, gram)) << "the Gram form must run for this test to mean anything";
        EXPECT_LT(gram_relative_error(newton_schulz(wide, gram), newton_schulz(wide, standard_twin(gram))), 1e-12);
        EXPECT_LT(gram_relative_error(newton_schulz(tall, gram), newton_schulz(tall, standard_twin(gram))), 1e-12);
      }
    }
  }
}

// Independently of the standard form: NS acts on each singular value, so
// the Gram form's singular values are the scalar polynomial's.
TEST(GramNewtonSchulz, SingularValuesFollowTheScalarPolynomial) {
  testing::expect_matches_scalar_ns_iteration(ill_conditioned(12, 48, 100.0, 3), gram_config("jordan", 5, 2), 1e-10);
}

TEST(GramNewtonSchulz, IterationsAloneMatchInEitherOrientation) {
  // newton_schulz_iterations keeps a tall matrix tall and multiplies from
  // the right: X_K = X Q with R = X^T X.
  for (const auto& X : {random_matrix(96, 24, 4), random_matrix(24, 96, 5)}) {
    const auto normalized = X / X.norm();
    const auto gram = gram_config("jordan", 5, 2);
    EXPECT_LT(gram_relative_error(newton_schulz_iterations(normalized, gram),
                             newton_schulz_iterations(normalized, standard_twin(gram))),
              1e-12);
  }
}

TEST(GramNewtonSchulz, BatchedEqualsLooped) {
  torch::manual_seed(6);
  const auto batch = torch::randn({3, 10, 40}, torch::kFloat64);
  const auto config = gram_config("jordan", 5, 2);
  const auto batched = newton_schulz(batch, config);
  for (int64_t i = 0; i < 3; ++i) EXPECT_TENSOR_NEAR(batched[i], newton_schulz(batch[i], config), 1e-12);
}

// In bf16 the Gram matrix carried between restarts drifts from the Gram
// matrix of the X it stands for; restarting every other step keeps the
// result about as close to the float64 one as the standard form's.
TEST(GramNewtonSchulz, Bf16StaysAboutAsCloseAsTheStandardForm) {
  for (const double condition : {1e1, 1e3, 1e5}) {
    SCOPED_TRACE("condition number " + std::to_string(condition));
    const auto M = ill_conditioned(64, 256, condition, 7);
    const auto exact = newton_schulz(M, gram_config("jordan", 5, 2));
    const auto gram = gram_config("jordan", 5, 2, NsDtype::kBFloat16);
    const double standard_error = gram_relative_error(newton_schulz(M, standard_twin(gram)), exact);
    const double gram_error = gram_relative_error(newton_schulz(M, gram), exact);
    EXPECT_GT(gram_error, 0.0) << "bf16 must really compute in bf16";
    EXPECT_LT(gram_error, 1.5 * standard_error + 0.01) << "standard form's error " << standard_error;
  }
}

// Why restarts exist: without them the carried Gram matrix of an
// ill-conditioned input loses its small eigenvalues to bf16 rounding, and
// five steps already land far from the float64 result (or at NaN).
TEST(GramNewtonSchulz, WithoutRestartsBf16BreaksDownOnIllConditionedInputs) {
  const auto M = ill_conditioned(64, 256, 1e3, 7);
  const auto exact = newton_schulz(M, gram_config("jordan", 5, 2));
  const auto unrestarted = newton_schulz(M, gram_config("jordan", 5, 100, NsDtype::kBFloat16));
  const double error = gram_relative_error(unrestarted, exact);
  EXPECT_TRUE(!std::isfinite(error) || error > 1.0) << "error without restarts " << error;
  EXPECT_LT(gram_relative_error(newton_schulz(M, gram_config("jordan", 5, 2, NsDtype::kBFloat16)), exact), 0.2);
}

TEST(GramNewtonSchulz, NearSquareMatricesTakeTheStandardForm) {
  const auto config = gram_config("jordan", 5, 2, NsDtype::kBFloat16);
  EXPECT_FALSE(uses_gram_form(768, 768, config));
  EXPECT_FALSE(uses_gram_form(768, 1024, config));
  EXPECT_TRUE(uses_gram_form(768, 2304, config));
  EXPECT_TRUE(uses_gram_form(3072, 768, config));
  EXPECT_FALSE(uses_gram_form(768, 3072, standard_twin(config)));
  // Restarting every step recomputes X X^T every step and saves nothing.
  EXPECT_FALSE(uses_gram_form(64, 4096, gram_config("jordan", 5, 1)));
  // One step saves nothing either: R, Z and Q X against X X^T, A A and B X.
  EXPECT_FALSE(uses_gram_form(64, 4096, gram_config("jordan", 1, 2)));
  const auto M = random_matrix(32, 32, 8, torch::kFloat32);
  EXPECT_TENSOR_NEAR(newton_schulz(M, config), newton_schulz(M, standard_twin(config)), 0.0);
}

// Counted by hand for K = 5: with a restart every 2 steps, R = X X^T, two
// restarts (Q X and X X^T each) and the final Q X are 6 products of
// 2 m^2 n FLOPs; the steps take 3 + 2 + 3 + 2 + 1 = 11 products of 2 m^3
// (Z every step, Q W where not fresh, W R W where the next step needs R).
TEST(GramNewtonSchulz, FlopCountFollowsTheRestarts) {
  const double m = 768, n = 3072;
  EXPECT_DOUBLE_EQ(newton_schulz_flops(768, 3072, gram_config("jordan", 5, 2)),
                   6 * 2 * m * m * n + 11 * 2 * m * m * m);
  // Every 3 steps: X X^T, one restart, Q X; 3 + 4 + 2 + 3 + 2 square products.
  EXPECT_DOUBLE_EQ(newton_schulz_flops(3072, 768, gram_config("jordan", 5, 3)),
                   4 * 2 * m * m * n + 14 * 2 * m * m * m);
  // Where the standard form runs, its count.
  EXPECT_DOUBLE_EQ(newton_schulz_flops(768, 768, gram_config("jordan", 5, 2)), newton_schulz_flops(768, 768, 5));
}

TEST(GramNewtonSchulz, ObserverSeesEveryStep) {
  const auto M = random_matrix(10, 40, 9);
  const auto gram = gram_config("jordan", 4, 2);
  std::vector<torch::Tensor> gram_steps, standard_steps;
  newton_schulz(M, gram, [&](int64_t, const torch::Tensor& X) { gram_steps.push_back(X.clone()); });
  newton_schulz(M, standard_twin(gram), [&](int64_t, const torch::Tensor& X) { standard_steps.push_back(X.clone()); });
  ASSERT_EQ(gram_steps.size(), 5u);
  ASSERT_EQ(standard_steps.size(), 5u);
  for (size_t k = 0; k < gram_steps.size(); ++k) EXPECT_LT(gram_relative_error(gram_steps[k], standard_steps[k]), 1e-12);
}

TEST(GramNewtonSchulz, RejectsBadSettingsByName) {
  auto config = gram_config("jordan", 5, 0);
  const auto message = error_message([&] { config.validate(); });
  EXPECT_NE(message.find("gram_restart = 0"), std::string::npos) << message;
  EXPECT_NE(error_message([] { parse_ns_method("gramm"); }).find("'gramm'"), std::string::npos);
  EXPECT_EQ(parse_ns_method("gram"), NsMethod::kGram);
  EXPECT_EQ(to_string(NsMethod::kStandard), "standard");
}

}  // namespace
}  // namespace muonlab::optim
