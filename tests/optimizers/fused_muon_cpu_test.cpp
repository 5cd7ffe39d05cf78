// The fused CPU Muon step (fused_muon_cpu.h): its two passes against their
// formulas in float64 and against LibTorch's own bf16 rounding, the
// right-multiplied NS of tall matrices against the transposed form, and the
// whole step against the float64 hand reference and against the general
// (unfused) path, with a check that the fused path is the one taken.
#include "muonlab/optimizers/fused_muon_cpu.h"

#include <cmath>
#include <limits>
#include <tuple>

#include "muonlab/optimizers/muon.h"
#include "muonlab/optimizers/newton_schulz.h"
#include "muon_matrix_problem.h"
#include "reference_newton_schulz.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using testing::error_message;
using testing::make_matrix_problem;
using testing::MatrixProblem;
using testing::run_both_paths;
using testing::run_three_steps;
using testing::reference_newton_schulz;

using MomentumCase = std::tuple<std::string, bool>;  // momentum form, Nesterov

class FusedMomentumUpdate : public ::testing::TestWithParam<MomentumCase> {};

TEST_P(FusedMomentumUpdate, EqualsTheFormulaInFloat64) {
  const auto [form, nesterov] = GetParam();
  torch::manual_seed(1);
  const double mu = 0.9;
  // Not a multiple of the 16-lane blocks, and larger than one task's grain.
  const auto grad = torch::randn({333, 101});
  auto momentum = torch::randn({333, 101});
  const auto g = grad.to(torch::kFloat64), m0 = momentum.to(torch::kFloat64);
  const bool ema = form == "ema";
  const auto m = ema ? mu * m0 + (1 - mu) * g : mu * m0 + g;
  const auto u = !nesterov ? m : (ema ? g + mu * (m - g) : g + mu * m);

  auto out = torch::empty({333, 101});
  const double squared_norm = fused_momentum_update(grad, momentum, out, mu, parse_momentum_kind(form), nesterov);
  EXPECT_TENSOR_NEAR(momentum.to(torch::kFloat64), m, 1e-5);
  EXPECT_TENSOR_NEAR(out.to(torch::kFloat64), u, 1e-5);
  EXPECT_NEAR(squared_norm, u.pow(2).sum().item<double>(), 1e-5 * squared_norm);
}

INSTANTIATE_TEST_SUITE_P(Forms, FusedMomentumUpdate,
                         ::testing::Combine(::testing::Values("ema", "sum"), ::testing::Bool()));

// Bit for bit the fp32 formula with every product and sum rounded on its
// own, whichever of the loop's vector clones this CPU runs
// (core/simd_clones.h): a clone that fused a * b + c into one rounding would
// make results depend on the CPU.
TEST(FusedMuonCpu, MomentumRoundsEachOperationInFp32) {
  torch::manual_seed(4);
  const auto grad = torch::randn({333, 101});
  const auto momentum0 = torch::randn({333, 101});
  const double mu = 0.95;
  const auto mu_f = static_cast<double>(static_cast<float>(mu));
  const auto weight_f = static_cast<double>(static_cast<float>(1.0 - mu));
  const auto expected_m = momentum0 * mu_f + grad * weight_f;  // fp32 tensors: each op rounded in fp32
  const auto expected_u = grad * weight_f + expected_m * mu_f;
  auto momentum = momentum0.clone();
  auto out = torch::empty({333, 101});
  fused_momentum_update(grad, momentum, out, mu, MomentumKind::kEma, /*nesterov=*/true);
  EXPECT_TRUE(torch::equal(momentum, expected_m)) << "largest difference "
                                                  << (momentum - expected_m).abs().max().item<float>();
  EXPECT_TRUE(torch::equal(out, expected_u)) << "largest difference " << (out - expected_u).abs().max().item<float>();
}

TEST(FusedMuonCpu, Bf16OutputRoundsAsLibTorchDoes) {
  torch::manual_seed(2);
  // Random values, ties between two bf16 neighbours, and the specials.
  auto values = torch::randn({4096}) * 100;
  const float ties[] = {1.00390625f, 1.01171875f, -1.00390625f, 3.0f + 1.0f / 128, 65504.f, 1e-40f,
                        std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN()};
  for (size_t i = 0; i < std::size(ties); ++i) values[static_cast<int64_t>(i)] = ties[i];
  // mu = 0 and the sum form without Nesterov: U = g exactly.
  auto momentum = torch::zeros_like(values);
  auto out = torch::empty({4096}, torch::kBFloat16);
  fused_momentum_update(values, momentum, out, 0.0, MomentumKind::kSum, /*nesterov=*/false);
  const auto expected = values.to(torch::kBFloat16);
  const auto same_bits = (out.view(torch::kInt16) == expected.view(torch::kInt16)) | (out.isnan() & expected.isnan());
  EXPECT_TRUE(same_bits.all().item<bool>()) << "first differing value: "
                                            << values.masked_select(~same_bits).slice(0, 0, 1);
}

// Bit for bit against the product taken in fp32 by LibTorch and rounded
// once to the tensor's type, over several tasks' worth of elements, with
// ties, subnormals and the specials. (LibTorch 1.13's bf16 mul_ by a scalar
// rounds the scalar to bf16 first; the factor here keeps fp32's precision,
// as PyTorch 2.x does.)
TEST(FusedMuonCpu, ScaleRoundsTheFp32ProductOnce) {
  torch::manual_seed(12);
  auto values = torch::randn({100003}) * 100;
  const float specials[] = {1.00390625f, -3.0f - 1.0f / 128, 1e-40f, 3e38f, std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN()};
  for (size_t i = 0; i < std::size(specials); ++i) values[static_cast<int64_t>(70000 + i)] = specials[i];
  for (const auto dtype : {torch::kBFloat16, torch::kFloat32}) {
    for (const double factor : {0.0123456789, 3.0, 1e-30}) {
      auto ours = values.to(dtype);
      const auto expected = (ours.to(torch::kFloat32) * static_cast<float>(factor)).to(dtype);
      fused_scale(ours, factor);
      const auto bits = dtype == torch::kFloat32 ? torch::kInt32 : torch::kInt16;
      const auto same_bits = (ours.view(bits) == expected.view(bits)) | (ours.isnan() & expected.isnan());
      EXPECT_TRUE(same_bits.all().item<bool>()) << dtype << " x " << factor << ": first differing value "
                                                << values.masked_select(~same_bits).slice(0, 0, 1);
    }
  }
}

TEST(FusedMuonCpu, DecayAndAddEqualsTheFormula) {
  torch::manual_seed(3);
  auto param = torch::randn({257, 63});
  const auto before = param.to(torch::kFloat64);
  const auto update = torch::randn({257, 63}).to(torch::kBFloat16);
  fused_decay_and_add(param, update, 0.99, -0.05);
  EXPECT_TENSOR_NEAR(param.to(torch::kFloat64), 0.99 * before - 0.05 * update.to(torch::kFloat64), 1e-6);
  const auto update32 = torch::randn({257, 63});
  const auto again = param.to(torch::kFloat64);
  fused_decay_and_add(param, update32, 1.0, 0.25);
  EXPECT_TENSOR_NEAR(param.to(torch::kFloat64), again + 0.25 * update32.to(torch::kFloat64), 1e-6);
}

TEST(FusedMuonCpu, RefusesBuffersOfTheWrongKind) {
  auto grad = torch::randn({4, 6}), momentum = torch::zeros({4, 6});
  auto half_sized = torch::empty({12});
  EXPECT_CONTAINS(error_message([&] { fused_momentum_update(grad, momentum, half_sized, 0.9, MomentumKind::kEma, true); }),
                  "the update buffer has 12 elements, expected 24");
  auto transposed = torch::randn({6, 4}).t();
  EXPECT_CONTAINS(error_message([&] { fused_decay_and_add(transposed, torch::zeros({24}), 1.0, 1.0); }),
                  "the parameter must be a contiguous fp32 CPU tensor");
}

TEST(NewtonSchulzIterations, TallMatricesTakeTheSamePolynomialFromTheRight) {
  torch::manual_seed(4);
  NewtonSchulzConfig config;
  config.dtype = NsDtype::kFloat64;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{40, 12}, {12, 40}, {16, 16}}) {
    const auto M = torch::randn(shape, torch::kFloat64);
    const auto X = M / (M.norm() + 1e-7);
    const auto result = newton_schulz_iterations(X, config);
    EXPECT_TRUE(result.is_contiguous());
    EXPECT_TENSOR_NEAR(result, reference_newton_schulz(M, 5), 1e-12);
  }
}

using StepCase = std::tuple<std::string, bool, std::string>;  // momentum form, Nesterov, scale rule

class FusedMuonStep : public ::testing::TestWithParam<StepCase> {};

TEST_P(FusedMuonStep, MatchesTheFloat64ReferenceAndTheGeneralPath) {
  const auto [form, nesterov, scale_rule] = GetParam();
  const MatrixProblem problem = make_matrix_problem(5);
  const auto options = MuonOptions(0.05)
                           .momentum(0.9)
                           .momentum_kind(parse_momentum_kind(form))
                           .nesterov(nesterov)
                           .scale_rule(parse_scale_rule(scale_rule))
                           .weight_decay(0.1)
                           .ns_dtype(NsDtype::kFloat32);
  const auto [fused, general] = run_both_paths(problem, options);

  // The hand reference in float64 (as muon_test.cpp's).
  for (size_t i = 0; i < problem.weights.size(); ++i) {
    auto W = problem.weights[i].to(torch::kFloat64);
    auto buffer = torch::zeros_like(W);
    const double r = static_cast<double>(W.size(0)), c = static_cast<double>(W.size(1));
    const double scale = scale_rule == "original" ? std::sqrt(std::max(1.0, r / c)) : 0.2 * std::sqrt(std::max(r, c));
    for (int step = 0; step < 3; ++step) {
      const auto G = problem.grads[i * 3 + step].to(torch::kFloat64);
      buffer = form == "ema" ? 0.9 * buffer + 0.1 * G : 0.9 * buffer + G;
      const auto U = !nesterov ? buffer : (form == "ema" ? G + 0.9 * (buffer - G) : G + 0.9 * buffer);
      W = W * (1 - 0.05 * 0.1) - 0.05 * scale * reference_newton_schulz(U, 5);
    }
    SCOPED_TRACE("matrix " + std::to_string(i));
    EXPECT_TENSOR_NEAR(fused[i].detach().to(torch::kFloat64), W, 2e-5);
    EXPECT_TENSOR_NEAR(fused[i].detach(), general[i].detach(), 2e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Options, FusedMuonStep,
                         ::testing::Combine(::testing::Values("ema", "sum"), ::testing::Bool(),
                                            ::testing::Values("original", "match_rms_adamw")));

TEST(FusedMuonStep, Bf16NewtonSchulzAgreesWithTheGeneralPath) {
  const MatrixProblem problem = make_matrix_problem(6);
  const auto options = MuonOptions(0.05).weight_decay(0.1).ns_dtype(NsDtype::kBFloat16);
  const auto [fused, general] = run_both_paths(problem, options);
  bool paths_differ = false;  // rounding differs, so the fused path did run
  for (size_t i = 0; i < fused.size(); ++i) {
    paths_differ |= !torch::equal(fused[i], general[i]);
    // Three steps of lr 0.05 move each weight by about 0.15 RMS; bf16 NS
    // (8 significant bits) differs in the third digit of that.
    const auto moved = (general[i] - problem.weights[i]).detach();
    const double difference = (fused[i] - general[i]).detach().norm().item<double>();
    EXPECT_LT(difference, 0.02 * moved.norm().item<double>()) << "matrix " << i;
    EXPECT_GT(moved.norm().item<double>(), 0) << "matrix " << i;
  }
  EXPECT_TRUE(paths_differ);
}

// Muon's direction does not depend on the gradient's scale, and a finite
// gradient of any size is orthogonalized: the squares of the update are
// summed in double, so entries past 1e19 (whose squares overflow fp32) do
// not turn the norm into inf and the update into zero. 2^83 keeps every
// product exact, so only eps can tell the two steps apart.
TEST(FusedMuonStep, DirectionDoesNotDependOnTheGradientScale) {
  const MatrixProblem problem = make_matrix_problem(7);
  MatrixProblem huge = problem;
  for (auto& g : huge.grads) g = g * std::ldexp(1.0, 83);
  for (const auto dtype : {NsDtype::kFloat32, NsDtype::kBFloat16})
  for (const bool fused : {true, false}) {
    const auto options = MuonOptions(0.05).weight_decay(0).ns_dtype(dtype).fused(fused);
    const auto plain = run_three_steps(problem, options);
    const auto scaled = run_three_steps(huge, options);
    for (size_t i = 0; i < plain.size(); ++i) {
      SCOPED_TRACE(to_string(dtype) + (fused ? " fused" : " general") + ", matrix " + std::to_string(i));
      EXPECT_GT((plain[i] - problem.weights[i]).abs().max().item<double>(), 0.01);
      EXPECT_TENSOR_NEAR(scaled[i].detach(), plain[i].detach(), 1e-6);
    }
  }
}

TEST(FusedMuonStep, TakenOnlyWhereItApplies) {
  auto param = torch::randn({8, 12}).set_requires_grad(true);
  const auto plain = MuonOptions(0.02).ns_dtype(NsDtype::kBFloat16);
  MuonSlot slot;
  slot.param = param;
  slot.grad = torch::randn({8, 12});
  slot.momentum_buffer = torch::zeros({8, 12});
  slot.step = 1;
  const MatrixView view = check_muon_param(param, "w", plain, nullptr);
  const auto applies = [&](const MuonOptions& options) {
    slot.options = &options;
    return fused_cpu_step_applies(slot, view);
  };
  EXPECT_TRUE(applies(plain));
  EXPECT_TRUE(applies(MuonOptions(plain).ns_dtype(NsDtype::kFloat32).momentum_kind(MomentumKind::kSum)));
  EXPECT_FALSE(applies(MuonOptions(plain).fused(false)));
  EXPECT_FALSE(applies(MuonOptions(plain).ns_dtype(NsDtype::kFloat64)));
  EXPECT_FALSE(applies(MuonOptions(plain).ns_batching(NsBatching::kAlways)));
  EXPECT_FALSE(applies(MuonOptions(plain).orthogonalize(false)));
  slot.param = param.detach().to(torch::kFloat64);
  EXPECT_FALSE(applies(plain));
  slot.param = param;
  slot.grad = torch::randn({12, 8}).t();  // not contiguous
  EXPECT_FALSE(applies(plain));
}

// A stack [E, r, c] is stepped through views of its tensors, so every one
// of them must be contiguous: a non-contiguous state would be reshaped into
// a copy, and the step written into that copy would be lost.
TEST(FusedMuonStep, StackTakenOnlyWhereEveryViewedTensorIsContiguous) {
  auto param = torch::randn({3, 8, 12}).set_requires_grad(true);
  const auto options = MuonOptions(0.02).ns_dtype(NsDtype::kBFloat16).second_moment(SecondMomentKind::kFull)
                           .nd_params(NdParams::kBatch);
  MuonSlot slot;
  slot.param = param;
  slot.grad = torch::randn({3, 8, 12});
  slot.momentum_buffer = torch::zeros({3, 8, 12});
  slot.second_moment.full = torch::zeros({3, 8, 12});
  slot.step = 1;
  slot.options = &options;
  const MatrixView view = check_muon_param(param, "experts.w1", options, nullptr);
  ASSERT_TRUE(view.batched);
  EXPECT_FALSE(fused_cpu_step_applies(slot, view));  // the single-matrix step takes no stack
  EXPECT_TRUE(fused_cpu_stack_step_applies(slot, view));
  slot.second_moment.full = torch::zeros({3, 12, 8}).transpose(1, 2);  // not contiguous
  EXPECT_FALSE(fused_cpu_stack_step_applies(slot, view));
  slot.second_moment.full = torch::zeros({3, 8, 12});
  slot.momentum_buffer = torch::zeros({3, 12, 8}).transpose(1, 2);
  EXPECT_FALSE(fused_cpu_stack_step_applies(slot, view));
}

}  // namespace
}  // namespace muonlab::optim
