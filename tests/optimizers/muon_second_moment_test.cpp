// Muon² and Muon²-F as options of Muon (docs/algorithms.md, Muon² and
// Muon²-F), and the no-orthogonalization ablation, against the update
// written out by hand in float64: V (or R and C), V_hat,
// U / (sqrt(V_hat) + eps), NS_K, scale.
#include <gtest/gtest.h>

#include <cmath>

#include "muonlab/optimizers/muon.h"
#include "data/data_test_util.h"
#include "reference_newton_schulz.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using testing::error_message;
using testing::random_matrix;

using testing::reference_newton_schulz;

// One matrix's Muon² / Muon²-F / ablation step with Nesterov: EMA momentum
// (Muon's default) or the sum form, the 'original' scale sqrt(max(1, r/c))
// or the AdamW-RMS-matched 0.2 sqrt(max(r, c)).
struct ReferenceStep {
  std::string variant;  // "full", "factored", "normalized"
  double lr = 0.05, mu = 0.9, beta2 = 0.95, eps = 1e-8;
  bool bias_correction = true;
  bool sum_momentum = false;      // B <- mu B + G; U = G + mu B
  bool match_rms_adamw = false;   // scale 0.2 sqrt(max(r, c))
  int64_t ns_steps = 3;
  torch::Tensor M, V, R, C;
  int64_t t = 0;

  void step(torch::Tensor& W, const torch::Tensor& G) {
    ++t;
    if (!M.defined()) {
      M = torch::zeros_like(W);
      V = torch::zeros_like(W);
      R = torch::zeros({W.size(0)}, W.options());
      C = torch::zeros({W.size(1)}, W.options());
    }
    M = sum_momentum ? mu * M + G : mu * M + (1 - mu) * G;
    auto U = sum_momentum ? G + mu * M : G + mu * (M - G);
    const double correction = bias_correction ? 1 - std::pow(beta2, t) : 1.0;
    if (variant == "full") {
      V = beta2 * V + (1 - beta2) * G * G;
      U = U / ((V / correction).sqrt() + eps);
    } else if (variant == "factored") {
      R = beta2 * R + (1 - beta2) * (G * G).sum(1);
      C = beta2 * C + (1 - beta2) * (G * G).sum(0);
      const auto V_hat = torch::outer(R, C) / C.sum() / correction;
      U = U / (V_hat.sqrt() + eps);
    }
    const auto O = variant == "normalized"
                       ? U * std::sqrt(double(std::min(W.size(0), W.size(1)))) / U.norm()
                       : reference_newton_schulz(U, ns_steps);
    const double rows = double(W.size(0)), cols = double(W.size(1));
    const double scale = match_rms_adamw ? 0.2 * std::sqrt(std::max(rows, cols)) : std::sqrt(std::max(1.0, rows / cols));
    W = W - lr * scale * O;
  }
};

MuonOptions options_for(const ReferenceStep& r) {
  auto options = MuonOptions(r.lr)
                     .momentum(r.mu)
                     .weight_decay(0)
                     .ns_steps(r.ns_steps)
                     .ns_dtype(NsDtype::kFloat64)
                     .beta2(r.beta2)
                     .second_moment_eps(r.eps)
                     .bias_correction(r.bias_correction);
  if (r.sum_momentum) options.momentum_kind(MomentumKind::kSum);
  if (r.match_rms_adamw) options.scale_rule(ScaleRule::kMatchRmsAdamW);
  if (r.variant == "full") options.second_moment(SecondMomentKind::kFull);
  if (r.variant == "factored") options.second_moment(SecondMomentKind::kFactored);
  if (r.variant == "normalized") options.orthogonalize(false);
  return options;
}

// Three steps of a wide, a tall and a square matrix against the reference.
void expect_matches_reference(const ReferenceStep& prototype) {
  std::vector<torch::Tensor> weights = {random_matrix(12, 20, 1), random_matrix(20, 12, 2),
                                        random_matrix(16, 16, 3)};
  std::vector<torch::Tensor> params;
  for (const auto& w : weights) params.push_back(w.clone().set_requires_grad(true));
  Muon muon(params, options_for(prototype));
  std::vector<ReferenceStep> reference(weights.size(), prototype);
  for (uint64_t step = 0; step < 3; ++step) {
    for (size_t i = 0; i < params.size(); ++i) {
      // Gradients with rows and columns of very different scales, the case
      // the second moment is for.
      const auto scales = torch::logspace(0, 2, weights[i].size(0), 10.0, torch::kFloat64);
      const auto grad = random_matrix(weights[i].size(0), weights[i].size(1), 100 + 10 * step + i) *
                        scales.unsqueeze(1);
      params[i].mutable_grad() = grad.clone();
      reference[i].step(weights[i], grad);
    }
    muon.step();
  }
  for (size_t i = 0; i < params.size(); ++i) {
    SCOPED_TRACE("matrix " + std::to_string(i));
    EXPECT_TENSOR_NEAR(params[i].detach(), weights[i], 1e-10);
  }
}

TEST(MuonSecondMoment, Muon2MatchesTheHandWrittenStep) {
  expect_matches_reference({"full"});
}

TEST(MuonSecondMoment, Muon2WithoutBiasCorrectionMatches) {
  ReferenceStep r{"full"};
  r.bias_correction = false;
  r.eps = 1e-10;
  expect_matches_reference(r);
}

TEST(MuonSecondMoment, Muon2FMatchesTheHandWrittenFactoredStep) {
  expect_matches_reference({"factored"});
}

TEST(MuonSecondMoment, SumMomentumFormMatchesForMuon2AndMuon2F) {
  for (const char* variant : {"full", "factored"}) {
    SCOPED_TRACE(variant);
    ReferenceStep r{variant};
    r.sum_momentum = true;
    expect_matches_reference(r);
  }
}

TEST(MuonSecondMoment, RmsMatchedScaleMatchesForMuon2AndMuon2F) {
  for (const char* variant : {"full", "factored"}) {
    SCOPED_TRACE(variant);
    ReferenceStep r{variant};
    r.match_rms_adamw = true;
    expect_matches_reference(r);
  }
}

TEST(MuonSecondMoment, NoOrthogonalizationAblationMatches) {
  expect_matches_reference({"normalized"});
}

TEST(MuonSecondMoment, Muon2FEqualsMuon2WhenTheSquaredGradientIsRankOne) {
  // G = a b^T has G*G = (a*a)(b*b)^T, rank one, which the factored form
  // reproduces exactly: the two optimizers take the same steps.
  const auto a = torch::linspace(0.5, 3.0, 10, torch::kFloat64);
  const auto b = torch::linspace(-2.0, 1.0, 14, torch::kFloat64);
  auto full = random_matrix(10, 14, 7).set_requires_grad(true);
  auto factored = full.detach().clone().set_requires_grad(true);
  Muon muon2({full}, options_for({"full"}));
  Muon muon2f({factored}, options_for({"factored"}));
  for (int step = 1; step <= 3; ++step) {
    const auto grad = torch::outer(a * step, b);
    full.mutable_grad() = grad.clone();
    factored.mutable_grad() = grad.clone();
    muon2.step();
    muon2f.step();
  }
  EXPECT_TENSOR_NEAR(full.detach(), factored.detach(), 1e-10);
}

TEST(MuonSecondMoment, StateRoundTripsThroughAFileAndResumesExactly) {
  for (const std::string variant : {"full", "factored"}) {
    SCOPED_TRACE(variant);
    testing::ScratchDir dir;
    auto run = [&](torch::Tensor& W, Muon& muon, uint64_t step) {
      W.mutable_grad() = random_matrix(W.size(0), W.size(1), 500 + step);
      muon.step();
    };
    auto W = random_matrix(8, 12, 9).set_requires_grad(true);
    Muon muon({W}, options_for({variant}));
    run(W, muon, 0);
    run(W, muon, 1);
    muon.save_to_file(dir.file("muon.pt"));
    auto resumed_weights = W.detach().clone().set_requires_grad(true);
    Muon resumed({resumed_weights}, options_for({variant}));
    resumed.load_from_file(dir.file("muon.pt"));
    run(W, muon, 2);
    run(resumed_weights, resumed, 2);
    EXPECT_TRUE(torch::equal(W, resumed_weights));
  }
}

TEST(MuonSecondMoment, RefusesStateOfAnotherVariant) {
  testing::ScratchDir dir;
  auto W = random_matrix(8, 12, 9).set_requires_grad(true);
  Muon muon2f({W}, options_for({"factored"}));
  W.mutable_grad() = random_matrix(8, 12, 10);
  muon2f.step();
  muon2f.save_to_file(dir.file("muon2f.pt"));
  Muon muon2({W}, options_for({"full"}));
  EXPECT_CONTAINS(error_message([&] { muon2.load_from_file(dir.file("muon2f.pt")); }),
                  "second_moment");
}

TEST(MuonSecondMoment, StateHoldsOnlyWhatTheVariantNeeds) {
  auto W = random_matrix(8, 12, 9).set_requires_grad(true);
  for (const std::string variant : {"full", "factored", "normalized"}) {
    Muon muon({W}, options_for({variant}));
    W.mutable_grad() = random_matrix(8, 12, 10);
    muon.step();
    const auto& state = static_cast<MuonParamState&>(*muon.state().begin()->second);
    const auto& v = state.second_moment();
    EXPECT_EQ(v.full.defined(), variant == "full") << variant;
    EXPECT_EQ(v.row.defined(), variant == "factored") << variant;
    if (variant == "factored") {
      EXPECT_EQ(v.row.sizes(), (std::vector<int64_t>{8}));
      EXPECT_EQ(v.col.sizes(), (std::vector<int64_t>{12}));
    }
  }
}

TEST(MuonSecondMoment, RejectsInvalidSecondMomentOptionsByField) {
  auto W = random_matrix(8, 12, 9).set_requires_grad(true);
  EXPECT_CONTAINS(error_message([&] { Muon({W}, options_for({"full"}).beta2(1.0)); }), "beta2");
  EXPECT_CONTAINS(error_message([&] { Muon({W}, options_for({"full"}).second_moment_eps(0)); }),
                  "eps");
}

}  // namespace
}  // namespace muonlab::optim
