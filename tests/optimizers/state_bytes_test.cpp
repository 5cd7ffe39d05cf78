// Optimizer state memory read from the state itself, against the sizes the
// algorithms imply: AdamW 2 fp32 numbers per weight, Muon 1, Muon² 2,
// Muon²-F 1 plus r + c per r x c matrix.
#include "muonlab/optimizers/state_bytes.h"

#include <gtest/gtest.h>

#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/muon.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

std::vector<torch::Tensor> fp32_matrices(const std::vector<std::pair<int64_t, int64_t>>& shapes) {
  std::vector<torch::Tensor> params;
  for (const auto& [r, c] : shapes) {
    auto p = torch::randn({r, c}).set_requires_grad(true);
    p.mutable_grad() = torch::randn({r, c});
    params.push_back(p);
  }
  return params;
}

MuonOptions muon_with(SecondMomentKind kind) { return MuonOptions(0.02).second_moment(kind); }

TEST(StateBytes, BytesPerParameterOfEachOptimizer) {
  const auto params = fp32_matrices({{8, 12}, {12, 8}, {16, 16}});
  const int64_t n = 8 * 12 * 2 + 16 * 16;
  AdamW adamw(params, AdamWOptions(1e-3));
  Muon muon(params, muon_with(SecondMomentKind::kNone));
  Muon muon2(params, muon_with(SecondMomentKind::kFull));
  Muon muon2f(params, muon_with(SecondMomentKind::kFactored));
  for (torch::optim::Optimizer* optimizer : std::vector<torch::optim::Optimizer*>{&adamw, &muon, &muon2, &muon2f}) {
    EXPECT_EQ(optimizer_state_bytes(*optimizer), 0) << "no state before the first step";
    EXPECT_EQ(optimizer_parameter_count(*optimizer), n);
    optimizer->step();
  }
  EXPECT_EQ(optimizer_state_bytes(adamw), 8 * n);
  EXPECT_EQ(optimizer_state_bytes(muon), 4 * n);
  EXPECT_EQ(optimizer_state_bytes(muon2), 8 * n);
  EXPECT_EQ(optimizer_state_bytes(muon2f), 4 * n + 4 * ((8 + 12) * 2 + 16 + 16));
}

TEST(StateBytes, Muon2FSecondMomentGrowsAsRowsPlusColumns) {
  // Doubling both sides of a matrix quadruples Muon²'s second moment but only
  // doubles Muon²-F's.
  std::vector<int64_t> full, factored;
  for (const int64_t scale : {1, 2, 4}) {
    const auto params = fp32_matrices({{8 * scale, 24 * scale}});
    Muon momentum_only(params, muon_with(SecondMomentKind::kNone));
    Muon muon2(params, muon_with(SecondMomentKind::kFull));
    Muon muon2f(params, muon_with(SecondMomentKind::kFactored));
    momentum_only.step();
    muon2.step();
    muon2f.step();
    full.push_back(optimizer_state_bytes(muon2) - optimizer_state_bytes(momentum_only));
    factored.push_back(optimizer_state_bytes(muon2f) - optimizer_state_bytes(momentum_only));
    EXPECT_EQ(factored.back(), 4 * (8 + 24) * scale);
    EXPECT_EQ(factored.back(), second_moment_state_bytes(8 * scale, 24 * scale, SecondMomentKind::kFactored));
    EXPECT_EQ(full.back(), second_moment_state_bytes(8 * scale, 24 * scale, SecondMomentKind::kFull));
  }
  EXPECT_EQ(full[2], 16 * full[0]);
  EXPECT_EQ(factored[2], 4 * factored[0]);
}

}  // namespace
}  // namespace muonlab::optim
