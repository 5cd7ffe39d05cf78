// Newton-Schulz against independent references: NS acts on each singular
// value separately, so the matrix result must match the scalar polynomial
// iteration applied to the input's singular values (computed here with
// plain doubles), and enough 'taylor' steps must reach the SVD polar factor.
#include "muonlab/optimizers/newton_schulz.h"

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "muonlab/analysis/polar_factor.h"
#include "ns_scalar_reference.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using analysis::polar_factor;
using analysis::singular_values;
using testing::error_message;
using testing::ill_conditioned;
using testing::random_matrix;

NewtonSchulzConfig config_of(const std::string& preset, int64_t steps,
                             NsDtype dtype = NsDtype::kFloat64) {
  NewtonSchulzConfig config;
  config.schedule = ns_schedule(preset);
  config.steps = steps;
  config.dtype = dtype;
  return config;
}

TEST(NewtonSchulz, SingularValuesFollowTheScalarPolynomial) {
  for (const auto* preset : {"jordan", "taylor", "polar_express"}) {
    SCOPED_TRACE(preset);
    testing::expect_matches_scalar_ns_iteration(random_matrix(24, 40, 1), config_of(preset, 5), 1e-9);
    testing::expect_matches_scalar_ns_iteration(ill_conditioned(40, 24, 1e4, 2), config_of(preset, 5), 1e-9);
  }
}

// The known band of 'jordan' after 5 steps is about [0.68, 1.21] for every
// singular value at least 2e-3 of the Frobenius norm; smaller ones are still
// on their way up but never overshoot.
void expect_jordan_band(const torch::Tensor& M) {
  const auto s_in = singular_values(M) / M.norm().item<double>();
  const auto s_out = singular_values(newton_schulz(M, config_of("jordan", 5)));
  for (int64_t i = 0; i < s_in.numel(); ++i) {
    const double in = s_in[i].item<double>();
    const double out = s_out[i].item<double>();
    EXPECT_LE(out, 1.21) << "input singular value " << in;
    if (in >= 2e-3) {
      EXPECT_GE(out, 0.68) << "input singular value " << in;
    }
  }
}

TEST(NewtonSchulz, JordanLandsInItsBandOnRandomMatrices) {
  expect_jordan_band(random_matrix(64, 128, 3));
  expect_jordan_band(random_matrix(128, 64, 4));
  expect_jordan_band(random_matrix(96, 96, 5));
}

TEST(NewtonSchulz, JordanLandsInItsBandOnIllConditionedMatrices) {
  const auto M = ill_conditioned(64, 96, 1e4, 6);
  const auto s = singular_values(M);
  EXPECT_NEAR((s[0] / s[-1]).item<double>(), 1e4, 1e-3 * 1e4);
  expect_jordan_band(M);
}

TEST(NewtonSchulz, TaylorConvergesToThePolarFactor) {
  const auto M = random_matrix(32, 48, 7);
  const auto target = polar_factor(M);
  double previous_error = 1e300;
  // Strictly better each step until machine precision (about step 8 here).
  for (int64_t steps = 1; steps <= 6; ++steps) {
    const double error = testing::max_abs_diff(newton_schulz(M, config_of("taylor", steps)), target);
    EXPECT_LT(error, previous_error) << steps << " steps";
    previous_error = error;
  }
  EXPECT_LT(testing::max_abs_diff(newton_schulz(M, config_of("taylor", 24)), target), 1e-12);
  const auto s = singular_values(newton_schulz(M, config_of("taylor", 24)));
  EXPECT_TENSOR_NEAR(s, torch::ones_like(s), 1e-10);
}

TEST(NewtonSchulz, BatchedEqualsLooped) {
  torch::manual_seed(8);
  const auto batch = torch::randn({2, 3, 20, 36}, torch::kFloat64);
  const auto config = config_of("jordan", 5);
  const auto batched = newton_schulz(batch, config);
  ASSERT_EQ(batched.sizes(), batch.sizes());
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 3; ++j) {
      EXPECT_TENSOR_NEAR(batched[i][j], newton_schulz(batch[i][j], config), 1e-12);
    }
  }
}

TEST(NewtonSchulz, TallMatrixIsTheTransposeOfItsWideTwin) {
  const auto M = random_matrix(50, 20, 9);
  const auto config = config_of("jordan", 5);
  EXPECT_TENSOR_NEAR(newton_schulz(M, config), newton_schulz(M.t(), config).t(), 1e-12);
}

TEST(NewtonSchulz, KeepsInputDtypeAndBf16StaysClose) {
  const auto M = random_matrix(32, 64, 10, torch::kFloat32);
  const auto fp32 = newton_schulz(M, config_of("jordan", 5, NsDtype::kFloat32));
  const auto bf16 = newton_schulz(M, config_of("jordan", 5, NsDtype::kBFloat16));
  EXPECT_EQ(fp32.scalar_type(), torch::kFloat32);
  EXPECT_EQ(bf16.scalar_type(), torch::kFloat32);
  EXPECT_LT(testing::max_abs_diff(fp32, bf16), 0.05);
  EXPECT_GT(testing::max_abs_diff(fp32, bf16), 0.0) << "bf16 must really compute in bf16";
}

// <actual - exact, exact> / <exact, exact>: by how much a result is scaled
// up or down as a whole. Rounding errors of random sign leave it near 0.
double relative_bias(const torch::Tensor& actual, const torch::Tensor& exact) {
  const auto e = exact.to(torch::kFloat64);
  return ((actual.to(torch::kFloat64) - e) * e).sum().item<double>() / (e * e).sum().item<double>();
}

// bf16 steps take the coefficient a unrounded. Rounded to bf16, Jordan's
// a = 3.4445 becomes 3.4375, and the result of one step shrinks by about
// 2e-3 as a whole (so does that of two Gram steps), far beyond what random
// rounding leaves over 8 matrices (below 3e-4 here). Checked for every way
// muonlab multiplies by a I + B: standard and Gram form, wide and tall,
// one matrix at a time and batched. The reference is the standard form in
// float64 from the same bf16 start.
TEST(NewtonSchulz, Bf16StepsTakeTheLinearCoefficientUnrounded) {
  const auto bf16_start = [](const torch::Tensor& M) {
    return newton_schulz(M, config_of("jordan", 0, NsDtype::kBFloat16)).to(torch::kBFloat16);
  };
  torch::manual_seed(14);
  const auto wide = bf16_start(torch::randn({8, 48, 192}));
  for (const auto method : {NsMethod::kStandard, NsMethod::kGram}) {
    auto config = config_of("jordan", method == NsMethod::kGram ? 2 : 1, NsDtype::kBFloat16);
    config.method = method;
    auto exact_config = config_of("jordan", config.steps);
    ASSERT_EQ(uses_gram_form(48, 192, config), method == NsMethod::kGram);
    for (const bool tall : {false, true}) {
      SCOPED_TRACE(to_string(method) + (tall ? ", tall" : ", wide"));
      std::vector<torch::Tensor> actual, exact;
      for (int64_t i = 0; i < wide.size(0); ++i) {
        const auto X = tall ? wide[i].t().contiguous() : wide[i];
        actual.push_back(newton_schulz_iterations(X, config));
        exact.push_back(newton_schulz_iterations(X.to(torch::kFloat64), exact_config));
      }
      EXPECT_LT(std::abs(relative_bias(torch::stack(actual), torch::stack(exact))), 1e-3);
    }
    SCOPED_TRACE(to_string(method) + ", batched");
    std::vector<torch::Tensor> exact;
    for (int64_t i = 0; i < wide.size(0); ++i) {
      exact.push_back(newton_schulz_iterations(wide[i].to(torch::kFloat64), exact_config));
    }
    // newton_schulz normalizes its input again; a bf16 start of norm 1 to
    // rounding is left as it is.
    EXPECT_LT(std::abs(relative_bias(newton_schulz(wide.to(torch::kFloat32), config), torch::stack(exact))), 1e-3);
  }
}

// In bf16 muonlab's steps round less than the Python form most Muon code
// runs (Keller Jordan's: X = a X + B @ X with B = b A + c A @ A, each
// product, scaling and sum rounded to bf16): after 5 steps the result is
// closer to the float64 one. On a Gaussian matrix its error is about 0.27x
// the Python form's, with singular values spread over 1e2 0.4-0.65x;
// over 1e3 and more both are dominated by the smallest singular values
// (0.75x, bench/gram_ns_accuracy.py).
TEST(NewtonSchulz, Bf16RoundsLessThanThePythonReferenceForm) {
  const auto jordan = ns_schedule("jordan").triples.front();
  const auto python_form = [&](torch::Tensor X) {
    for (int step = 0; step < 5; ++step) {
      const auto A = torch::matmul(X, X.t());
      const auto B = jordan.b * A + jordan.c * torch::matmul(A, A);
      X = jordan.a * X + torch::matmul(B, X);
    }
    return X;
  };
  const std::pair<torch::Tensor, double> cases[] = {{random_matrix(64, 256, 15), 0.5},
                                                    {ill_conditioned(64, 256, 1e2, 16), 0.8}};
  for (const auto& [M, bound] : cases) {
    const auto start = newton_schulz(M.to(torch::kFloat32), config_of("jordan", 0, NsDtype::kBFloat16));
    const auto exact = newton_schulz_iterations(start.to(torch::kFloat64), config_of("jordan", 5));
    const auto error = [&](const torch::Tensor& Y) {
      return ((Y.to(torch::kFloat64) - exact).norm() / exact.norm()).item<double>();
    };
    const double ours =
        error(newton_schulz_iterations(start.to(torch::kBFloat16), config_of("jordan", 5, NsDtype::kBFloat16)));
    const double python = error(python_form(start.to(torch::kBFloat16)));
    EXPECT_GT(ours, 0.0) << "bf16 must really compute in bf16";
    EXPECT_LT(ours, bound * python) << "the Python form's error " << python;
  }
}

// Finite entries whose fp32 sum of squares overflows (norms past about
// 1.8e19) are normalized as any others, matrix by matrix in a batch; an
// all-zero matrix stays zero. Held against the normalization in float64.
TEST(NewtonSchulz, NormalizesMatricesWhoseSquaresOverflowFp32) {
  const auto base = random_matrix(20, 36, 13, torch::kFloat32);
  const auto batch = torch::stack({base, base * std::ldexp(1.0, 83), base * std::ldexp(1.0, 120), torch::zeros_like(base)});
  const auto wide = batch.to(torch::kFloat64);
  const auto expected = wide / (wide.norm(2, {1, 2}, /*keepdim=*/true) + 1e-7);
  for (const auto& [dtype, tolerance] : {std::pair{NsDtype::kFloat32, 1e-6}, std::pair{NsDtype::kBFloat16, 4e-3}}) {
    SCOPED_TRACE(to_string(dtype));
    const auto normalized = newton_schulz(batch, config_of("jordan", 0, dtype)).to(torch::kFloat64);
    EXPECT_TENSOR_NEAR(normalized, expected, tolerance);
    const auto orthogonal = newton_schulz(batch, config_of("jordan", 5, dtype));
    EXPECT_TRUE(torch::isfinite(orthogonal).all().item<bool>());
    // Scaled by powers of two, the matrices round alike all the way.
    EXPECT_TENSOR_NEAR(orthogonal[1], orthogonal[0], 0.0);
    EXPECT_TENSOR_NEAR(orthogonal[2], orthogonal[0], 0.0);
  }
}

TEST(NewtonSchulz, CustomTriplesEqualTheSamePreset) {
  const auto M = random_matrix(16, 24, 11);
  const auto jordan = ns_schedule("jordan").triples.front();
  NewtonSchulzConfig custom;
  custom.schedule = ns_schedule_custom({jordan, jordan, jordan});
  custom.steps = 3;
  custom.dtype = NsDtype::kFloat64;
  EXPECT_TENSOR_NEAR(newton_schulz(M, custom), newton_schulz(M, config_of("jordan", 3)), 0.0);
}

TEST(NewtonSchulz, ZeroStepsReturnsTheNormalizedInput) {
  const auto M = random_matrix(8, 12, 12);
  EXPECT_TENSOR_NEAR(newton_schulz(M, config_of("jordan", 0)), M / (M.norm() + 1e-7), 1e-15);
}

TEST(NewtonSchulz, RejectsBadSettingsByName) {
  EXPECT_NE(error_message([] { ns_schedule("jordon"); }).find("'jordon'"), std::string::npos);
  NewtonSchulzConfig custom;
  custom.schedule = ns_schedule_custom({{1, 0, 0}, {1, 0, 0}});
  custom.steps = 5;
  const auto message = error_message([&] { custom.validate(); });
  EXPECT_NE(message.find("2 triples"), std::string::npos) << message;
  EXPECT_NE(message.find("ns_steps = 5"), std::string::npos) << message;
  EXPECT_NE(error_message([] { parse_ns_dtype("fp16"); }).find("'fp16'"), std::string::npos);
  // A non-finite coefficient would make every update NaN.
  custom.steps = 2;
  custom.schedule = ns_schedule_custom({{3.4445, -4.775, 2.0315}, {std::nan(""), 0, 0}});
  EXPECT_CONTAINS(error_message([&] { custom.validate(); }),
                  "Newton-Schulz coefficients 'custom' hold the triple (nan, 0, 0): expected finite numbers");
  custom.schedule = ns_schedule_custom({{3.4445, std::numeric_limits<double>::infinity(), 2.0315}});
  EXPECT_CONTAINS(error_message([&] { custom.validate(); }), "(3.4445, inf, 2.0315)");
}

TEST(NewtonSchulz, PolarExpressRepeatsItsLastTripleBeyondFiveSteps) {
  const auto schedule = ns_schedule("polar_express");
  EXPECT_EQ(schedule.triples.size(), 5u);
  EXPECT_EQ(schedule.step(7), schedule.triples.back());
  EXPECT_DOUBLE_EQ(schedule.norm_scale, 1.02);
}

TEST(NewtonSchulz, FlopCountMatchesTheThreeMatmuls) {
  // Per step on a wide m x n matrix: X X^T (2 m m n), A A (2 m^3), B X (2 m m n).
  EXPECT_DOUBLE_EQ(newton_schulz_flops(768, 3072, 1), 4.0 * 768 * 768 * 3072 + 2.0 * 768 * 768 * 768);
  EXPECT_DOUBLE_EQ(newton_schulz_flops(3072, 768, 5), newton_schulz_flops(768, 3072, 5));
}

}  // namespace
}  // namespace muonlab::optim
