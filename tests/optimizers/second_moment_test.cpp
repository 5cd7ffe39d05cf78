// Muon²'s and Muon²-F's preconditioner (docs/algorithms.md, Muon² and
// Muon²-F) against references computed another way (hand formulas, explicit
// loops, plain NS), and the properties that section states: a constant
// second moment is Muon on a rescaled input; the factored form is exact when
// G*G has rank one; its state grows as r + c. Also the "no
// orthogonalization" ablation.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "muonlab/optimizers/newton_schulz.h"
#include "muonlab/optimizers/second_moment.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

SecondMomentOptions options_of(SecondMomentKind kind, double beta2 = 0.95, bool bias_correction = true) {
  SecondMomentOptions options;
  options.kind = kind;
  options.beta2 = beta2;
  options.bias_correction = bias_correction;
  return options;
}

// max |a - b| / |b|: the preconditioned entries span orders of magnitude
// (U / |G| with small |G|), so absolute tolerances would say little.
double max_relative_diff(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  return ((a64 - b64).abs() / b64.abs()).max().item<double>();
}

// Every gradient with G*G = c everywhere (entries +-sqrt(c)) gives V_hat = c
// after bias correction, so the preconditioned input is U / (sqrt(c) + eps)
// and NS, which removes scale, returns NS(U): Muon² is Muon here.
TEST(SecondMoment, ConstantSecondMomentIsMuonOnARescaledInput) {
  const double c = 2.25;
  const auto options = options_of(SecondMomentKind::kFull);
  const torch::Tensor param = torch::zeros({6, 10}, torch::kFloat64);
  SecondMomentState state = make_second_moment_state(param, options);
  torch::Tensor U, preconditioned;
  for (int64_t step = 1; step <= 5; ++step) {
    const torch::Tensor grad = std::sqrt(c) * torch::sign(testing::random_matrix(6, 10, 10 + step));
    U = testing::random_matrix(6, 10, 20 + step);
    preconditioned = precondition(U, grad, state, step, options);
  }
  EXPECT_TENSOR_NEAR(preconditioned, U / (std::sqrt(c) + options.eps), 1e-12);
  for (int64_t steps : {3, 5}) {
    NewtonSchulzConfig ns;
    ns.steps = steps;
    ns.dtype = NsDtype::kFloat64;
    // Not bit-equal: NS normalizes by ||M||_F + 1e-7, an eps that does not
    // scale with M.
    EXPECT_TENSOR_NEAR(newton_schulz(preconditioned, ns), newton_schulz(U, ns), 1e-7);
  }
}

// A fixed gradient: the EMA from zero is (1 - beta2^t) G*G, which the bias
// correction divides out exactly, at every step.
TEST(SecondMoment, FixedGradientGivesVHatEqualToGradSquared) {
  const auto options = options_of(SecondMomentKind::kFull, 0.95);
  const torch::Tensor grad = testing::random_matrix(5, 8, 41);
  SecondMomentState state = make_second_moment_state(grad, options);
  for (int64_t step = 1; step <= 50; ++step) {
    const torch::Tensor U = testing::random_matrix(5, 8, 100 + step);
    const torch::Tensor out = precondition(U, grad, state, step, options);
    const double weight = 1.0 - std::pow(options.beta2, static_cast<double>(step));
    ASSERT_LE(max_relative_diff(state.full / weight, grad * grad), 1e-13) << "step " << step;
    ASSERT_LE(max_relative_diff(out, U / (grad.abs() + options.eps)), 1e-13) << "step " << step;
  }
}

TEST(SecondMoment, BiasCorrectionOnTheFirstStep) {
  const torch::Tensor grad = testing::random_matrix(4, 5, 1);
  const torch::Tensor U = testing::random_matrix(4, 5, 2);
  for (bool corrected : {true, false}) {
    const auto options = options_of(SecondMomentKind::kFull, 0.9, corrected);
    SecondMomentState state = make_second_moment_state(grad, options);
    const torch::Tensor v_hat = corrected ? grad * grad : 0.1 * grad * grad;
    EXPECT_LE(max_relative_diff(precondition(U, grad, state, 1, options), U / (v_hat.sqrt() + options.eps)),
              1e-14);
  }
}

// The factored estimate on a general (not rank-one) gradient, against R, C
// and V_hat_ij = R_i C_j / sum(C) written out as loops over plain doubles.
TEST(SecondMoment, FactoredMatchesLoopsOverRowsAndColumns) {
  const int64_t rows = 4, cols = 6;
  const double beta2 = 0.8;
  for (bool corrected : {true, false}) {
    const auto options = options_of(SecondMomentKind::kFactored, beta2, corrected);
    SecondMomentState state = make_second_moment_state(torch::zeros({rows, cols}, torch::kFloat64), options);
    std::vector<double> R(rows, 0.0), C(cols, 0.0);
    for (int64_t step = 1; step <= 3; ++step) {
      const torch::Tensor grad = testing::random_matrix(rows, cols, 50 + step);
      const torch::Tensor U = testing::random_matrix(rows, cols, 60 + step);
      const torch::Tensor out = precondition(U, grad, state, step, options);

      auto g = grad.accessor<double, 2>();
      for (int64_t i = 0; i < rows; ++i) {
        double row_sum = 0;
        for (int64_t j = 0; j < cols; ++j) row_sum += g[i][j] * g[i][j];
        R[i] = beta2 * R[i] + (1 - beta2) * row_sum;
      }
      for (int64_t j = 0; j < cols; ++j) {
        double col_sum = 0;
        for (int64_t i = 0; i < rows; ++i) col_sum += g[i][j] * g[i][j];
        C[j] = beta2 * C[j] + (1 - beta2) * col_sum;
      }
      double total = 0;
      for (double value : C) total += value;
      const double correction = corrected ? 1.0 - std::pow(beta2, static_cast<double>(step)) : 1.0;
      torch::Tensor expected = torch::empty({rows, cols}, torch::kFloat64);
      auto u = U.accessor<double, 2>();
      auto e = expected.accessor<double, 2>();
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < cols; ++j) {
          e[i][j] = u[i][j] / (std::sqrt(R[i] * C[j] / total / correction) + options.eps);
        }
      }
      EXPECT_LE(max_relative_diff(out, expected), 1e-13) << "step " << step << " corrected " << corrected;
      EXPECT_LE(max_relative_diff(state.row, torch::tensor(R, torch::kFloat64)), 1e-14);
      EXPECT_LE(max_relative_diff(state.col, torch::tensor(C, torch::kFloat64)), 1e-14);
    }
  }
}

// G_ij = a_i b_j makes G*G = (a*a)(b*b)^T rank one, the EMA of such
// matrices stays rank one, and then R_i C_j / sum(C) = V_ij exactly.
TEST(SecondMoment, FactoredEqualsFullWhenGradSquaredIsRankOne) {
  for (torch::Dtype dtype : {torch::kFloat64, torch::kFloat32}) {
    const auto full = options_of(SecondMomentKind::kFull);
    const auto factored = options_of(SecondMomentKind::kFactored);
    const torch::Tensor param = torch::zeros({7, 5}, dtype);
    SecondMomentState full_state = make_second_moment_state(param, full);
    SecondMomentState factored_state = make_second_moment_state(param, factored);
    const torch::Tensor a = testing::random_matrix(7, 1, 3, dtype), b = testing::random_matrix(1, 5, 4, dtype);
    const double tolerance = dtype == torch::kFloat64 ? 1e-12 : 1e-6;
    for (int64_t step = 1; step <= 6; ++step) {
      const torch::Tensor grad = (a * b) * static_cast<double>(step);  // rank one, changing scale
      const torch::Tensor U = testing::random_matrix(7, 5, 30 + step, dtype);
      const torch::Tensor from_factored = precondition(U, grad, factored_state, step, factored);
      const torch::Tensor from_full = precondition(U, grad, full_state, step, full);
      EXPECT_EQ(from_factored.scalar_type(), dtype);
      EXPECT_LE(max_relative_diff(from_factored, from_full), tolerance) << "step " << step << " " << dtype;
    }
  }
}

TEST(SecondMoment, StateGrowsAsRowsPlusColumnsWhenFactored) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{8, 8}, {64, 16}, {128, 512}, {3072, 768}}) {
    const torch::Tensor param = torch::zeros({rows, cols}, torch::kBFloat16);
    SecondMomentState factored = make_second_moment_state(param, options_of(SecondMomentKind::kFactored));
    SecondMomentState full = make_second_moment_state(param, options_of(SecondMomentKind::kFull));
    SecondMomentState none = make_second_moment_state(param, options_of(SecondMomentKind::kNone));
    EXPECT_EQ(factored.row.numel(), rows);
    EXPECT_EQ(factored.col.numel(), cols);
    EXPECT_FALSE(factored.full.defined());
    EXPECT_EQ(full.full.numel(), rows * cols);
    EXPECT_FALSE(full.row.defined() || full.col.defined());
    EXPECT_FALSE(none.full.defined() || none.row.defined() || none.col.defined());
    EXPECT_EQ(factored.row.scalar_type(), torch::kFloat32);  // fp32 state for a bf16 parameter
    EXPECT_EQ(full.full.scalar_type(), torch::kFloat32);

    const int64_t factored_bytes = (factored.row.numel() + factored.col.numel()) * 4;
    EXPECT_EQ(second_moment_state_bytes(rows, cols, SecondMomentKind::kFactored), factored_bytes);
    EXPECT_EQ(second_moment_state_bytes(rows, cols, SecondMomentKind::kFull), full.full.numel() * 4);
    EXPECT_EQ(second_moment_state_bytes(rows, cols, SecondMomentKind::kNone), 0);
  }
  // fp64 parameters keep fp64 state.
  const auto fp64 = make_second_moment_state(torch::zeros({2, 3}, torch::kFloat64),
                                             options_of(SecondMomentKind::kFactored));
  EXPECT_EQ(fp64.row.scalar_type(), torch::kFloat64);
}

TEST(SecondMoment, NoneLeavesTheUpdateAndStateAlone) {
  const torch::Tensor U = testing::random_matrix(3, 4, 5);
  const auto options = options_of(SecondMomentKind::kNone);
  SecondMomentState state = make_second_moment_state(U, options);
  EXPECT_TRUE(torch::equal(precondition(U, U, state, 1, options), U));
  EXPECT_FALSE(state.full.defined() || state.row.defined() || state.col.defined());
}

// A zero gradient history: sum(C) = 0 must not give 0/0; V_hat = 0 and the
// update is divided by eps alone, as Muon² would.
TEST(SecondMoment, ZeroGradientIsGuarded) {
  const torch::Tensor U = testing::random_matrix(3, 4, 6);
  for (SecondMomentKind kind : {SecondMomentKind::kFull, SecondMomentKind::kFactored}) {
    const auto options = options_of(kind);
    SecondMomentState state = make_second_moment_state(U, options);
    const torch::Tensor out = precondition(U, torch::zeros_like(U), state, 1, options);
    EXPECT_TRUE(torch::isfinite(out).all().item<bool>()) << to_string(kind);
    EXPECT_LE(max_relative_diff(out, U / options.eps), 1e-15) << to_string(kind);
  }
}

// bf16 momentum (NS in bf16 on GPU): the division runs in fp32 and the result
// comes back in bf16, equal to the fp32 computation rounded once.
TEST(SecondMoment, Bf16UpdateComputedInFp32) {
  const torch::Tensor grad = testing::random_matrix(8, 8, 7, torch::kFloat32);
  const torch::Tensor U = testing::random_matrix(8, 8, 8, torch::kFloat32).to(torch::kBFloat16);
  for (SecondMomentKind kind : {SecondMomentKind::kFull, SecondMomentKind::kFactored}) {
    const auto options = options_of(kind);
    SecondMomentState bf16_state = make_second_moment_state(U, options);
    SecondMomentState fp32_state = make_second_moment_state(grad, options);
    const torch::Tensor out = precondition(U, grad, bf16_state, 1, options);
    const torch::Tensor reference = precondition(U.to(torch::kFloat32), grad, fp32_state, 1, options);
    EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(out, reference.to(torch::kBFloat16))) << to_string(kind);
  }
}

// The ablation: an orthogonal matrix's Frobenius norm, sqrt(min(r, c)), in
// the momentum's direction, per matrix of a batch, wide and tall.
// precondition_all batches the elementwise work of many matrices into
// multi-tensor ops; on the CPU it must be precondition() per matrix, bit for
// bit, state included, over several steps and for both kinds. The bf16
// update makes the second list fall back to precondition() one by one.
TEST(SecondMoment, PreconditionAllIsPreconditionPerMatrixBitForBit) {
  for (const auto kind : {SecondMomentKind::kFull, SecondMomentKind::kFactored}) {
    const auto options = options_of(kind);
    for (const bool with_bf16 : {false, true}) {
      const std::vector<std::vector<int64_t>> shapes = {{6, 5}, {4, 9}, {3, 6, 5}};
      std::vector<SecondMomentState> ours, theirs;
      for (const auto& shape : shapes) {
        ours.push_back(make_second_moment_state(torch::zeros(shape), options));
        theirs.push_back(make_second_moment_state(torch::zeros(shape), options));
      }
      torch::manual_seed(7);
      for (int64_t step = 1; step <= 3; ++step) {
        std::vector<torch::Tensor> updates, grads, expected;
        std::vector<SecondMomentState*> states;
        for (size_t i = 0; i < shapes.size(); ++i) {
          grads.push_back(torch::randn(shapes[i]));
          updates.push_back(torch::randn(shapes[i]));
          if (with_bf16 && i == 1) updates.back() = updates.back().to(torch::kBFloat16);
          expected.push_back(precondition(updates.back(), grads.back(), theirs[i], step, options));
          states.push_back(&ours[i]);
        }
        precondition_all(updates, grads, states, step, options);
        for (size_t i = 0; i < shapes.size(); ++i) {
          const std::string where = to_string(kind) + (with_bf16 ? " with a bf16 update" : "") + ", step " +
                                    std::to_string(step) + ", matrix " + std::to_string(i);
          EXPECT_TRUE(torch::equal(updates[i], expected[i])) << where;
          EXPECT_EQ(updates[i].scalar_type(), expected[i].scalar_type()) << where;
          const auto& a = ours[i];
          const auto& b = theirs[i];
          if (kind == SecondMomentKind::kFull) {
            EXPECT_TRUE(torch::equal(a.full, b.full)) << where;
          } else {
            EXPECT_TRUE(torch::equal(a.row, b.row) && torch::equal(a.col, b.col)) << where;
          }
        }
      }
    }
  }
}

TEST(NormalizedDirection, OrthogonalNormSameDirection) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{6, 9}, {9, 6}, {1, 5}}) {
    torch::manual_seed(rows * 10 + cols);
    const torch::Tensor U =
        torch::randn({2, 3, rows, cols}, torch::kFloat64) * torch::tensor({1e-3, 1.0, 50.0}, torch::kFloat64)
                                                                 .view({1, 3, 1, 1});
    const torch::Tensor O = normalized_direction(U);
    ASSERT_EQ(O.sizes(), U.sizes());
    const double expected_norm = std::sqrt(static_cast<double>(std::min(rows, cols)));
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t h = 0; h < 3; ++h) {
        const torch::Tensor o = O[b][h], u = U[b][h];
        EXPECT_NEAR(o.norm().item<double>(), expected_norm, 1e-12);
        const double cosine = (o * u).sum().item<double>() / (o.norm() * u.norm()).item<double>();
        EXPECT_NEAR(cosine, 1.0, 1e-14);
      }
    }
  }
  // An orthogonal matrix is its own normalized direction.
  const torch::Tensor Q = testing::random_orthonormal(8, 5, 9);
  EXPECT_TENSOR_NEAR(normalized_direction(Q), Q, 1e-14);
}

TEST(NormalizedDirection, ZeroStaysZeroAndDtypeKept) {
  EXPECT_TRUE(torch::equal(normalized_direction(torch::zeros({3, 4})), torch::zeros({3, 4})));
  const torch::Tensor U = testing::random_matrix(4, 16, 10, torch::kFloat32).to(torch::kBFloat16);
  const torch::Tensor O = normalized_direction(U);
  EXPECT_EQ(O.scalar_type(), torch::kBFloat16);
  EXPECT_NEAR(O.to(torch::kFloat64).norm().item<double>(), 2.0, 2e-2);
  EXPECT_CONTAINS(testing::error_message([] { normalized_direction(torch::ones({4})); }),
                  "normalized_direction needs matrices [..., r, c], got shape [4]");
}

TEST(SecondMoment, KindNamesRoundTrip) {
  for (SecondMomentKind kind : {SecondMomentKind::kNone, SecondMomentKind::kFull, SecondMomentKind::kFactored}) {
    EXPECT_EQ(parse_second_moment_kind(to_string(kind)), kind);
  }
}

TEST(SecondMoment, BadOptionsNamed) {
  auto with = [](double beta2, double eps) {
    SecondMomentOptions options = options_of(SecondMomentKind::kFull, beta2);
    options.eps = eps;
    return testing::error_message([&] { options.validate(); });
  };
  EXPECT_EQ(with(0.0, 1e-8), "");
  EXPECT_EQ(with(0.999, 1e-10), "");
  EXPECT_CONTAINS(with(1.0, 1e-8), "beta2 = 1: expected a number in [0, 1)");
  EXPECT_CONTAINS(with(-0.5, 1e-8), "beta2 = -0.5: expected a number in [0, 1)");
  EXPECT_CONTAINS(with(std::nan(""), 1e-8), "beta2 = nan: expected a number in [0, 1)");
  EXPECT_CONTAINS(with(0.9, 0), "eps = 0: expected a finite number > 0");
  EXPECT_CONTAINS(with(0.9, -1e-8), "eps = -1e-08: expected a finite number > 0");
  EXPECT_CONTAINS(testing::error_message([] { parse_second_moment_kind("adam"); }),
                  "unknown second moment 'adam': expected none, full (Muon²) or factored (Muon²-F)");
}

TEST(SecondMoment, MisuseNamed) {
  const torch::Tensor U = testing::random_matrix(3, 4, 11);
  const auto full = options_of(SecondMomentKind::kFull), factored = options_of(SecondMomentKind::kFactored);
  SecondMomentState full_state = make_second_moment_state(U, full);
  EXPECT_CONTAINS(testing::error_message([&] { precondition(U, U, full_state, 0, full); }),
                  "Muon² step = 0: expected the 1-based step being taken");
  EXPECT_CONTAINS(testing::error_message([&] { precondition(U, U, full_state, 1, factored); }),
                  "Muon²-F state has no row/column second moments");
  EXPECT_CONTAINS(testing::error_message([&] { precondition(U.t(), U.t(), full_state, 1, full); }),
                  "Muon² state has shape [3, 4], expected [4, 3]");
  EXPECT_CONTAINS(testing::error_message([&] { precondition(U, U.t(), full_state, 1, full); }),
                  "Muon² gradient has shape [4, 3], expected [3, 4]");
  SecondMomentState factored_state = make_second_moment_state(U, factored);
  EXPECT_CONTAINS(testing::error_message([&] { precondition(U.t(), U.t(), factored_state, 1, factored); }),
                  "Muon²-F state of row shape [3] and column shape [4] does not fit an update of shape [4, 3]");
  EXPECT_CONTAINS(testing::error_message([] {
                    make_second_moment_state(torch::zeros({4}), options_of(SecondMomentKind::kFactored));
                  }),
                  "Muon²-F needs a matrix or a stack of matrices [..., r, c], got shape [4]");
}

// The helper an optimizer's visit() calls: buffers saved and restored by
// name, and a shape mismatch on load named.
struct StateHolder : VisitableParamState {
  SecondMomentState state;
  void visit(ParamStateVisitor& visitor) override { visit_second_moment_state(state, visitor); }
};

TEST(SecondMoment, StateBuffersRoundTripByName) {
  const torch::Tensor grad = testing::random_matrix(3, 5, 12, torch::kFloat32);
  const auto options = options_of(SecondMomentKind::kFactored);
  StateHolder saved;
  saved.state = make_second_moment_state(grad, options);
  precondition(grad, grad, saved.state, 1, options);

  torch::serialize::OutputArchive out;
  write_param_state(saved, out);
  std::ostringstream written;
  out.save_to(written);
  const std::string bytes = written.str();

  std::istringstream first_read(bytes);
  torch::serialize::InputArchive in;
  in.load_from(first_read);
  StateHolder loaded;
  loaded.state = make_second_moment_state(grad, options);
  read_param_state(loaded, in, "h.0.mlp.fc.weight");
  EXPECT_TRUE(torch::equal(loaded.state.row, saved.state.row));
  EXPECT_TRUE(torch::equal(loaded.state.col, saved.state.col));

  StateHolder wrong_shape;
  wrong_shape.state = make_second_moment_state(grad.t(), options);
  std::istringstream second_read(bytes);
  torch::serialize::InputArchive again;
  again.load_from(second_read);
  EXPECT_CONTAINS(testing::error_message([&] { read_param_state(wrong_shape, again, "h.0.mlp.fc.weight"); }),
                  "'h.0.mlp.fc.weight': buffer 'second_moment_row' has shape [3], expected [5]");
}

}  // namespace
}  // namespace muonlab::optim
