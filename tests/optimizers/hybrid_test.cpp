// MuonWithAuxAdamW: each parameter gets exactly the update of the
// optimizer it is routed to, and training a tiny model lowers its loss.
#include "muonlab/optimizers/hybrid.h"

#include <limits>

#include "test_util.h"
#include "tiny_model.h"

namespace muonlab::optim {
namespace {

const MuonOptions kMuon = MuonOptions(0.02).ns_dtype(NsDtype::kFloat64);
const AdamWOptions kAdamW = AdamWOptions(1e-2).weight_decay(0.0);

TEST(MuonWithAuxAdamW, EachParameterStepsLikeItsOwnOptimizer) {
  auto model = testing::make_tiny_model(1);
  auto twin = testing::make_tiny_model(1);
  const auto batch = testing::tiny_batch(2);
  model->loss(batch).backward();
  twin->loss(batch).backward();

  MuonWithAuxAdamW hybrid(model->named_parameters(), kMuon, kAdamW);
  ASSERT_NE(hybrid.muon(), nullptr);
  ASSERT_NE(hybrid.adamw(), nullptr);
  EXPECT_EQ(hybrid.muon()->all_parameters().size(), 8u);

  // The twin steps its parameters with standalone optimizers, split by hand.
  torch::OrderedDict<std::string, torch::Tensor> matrices, others;
  for (const auto& item : twin->named_parameters()) {
    const bool matrix = item.value().dim() == 2 && item.key().find("wte") == std::string::npos &&
                        item.key().find("wpe") == std::string::npos &&
                        item.key().find("lm_head") == std::string::npos;
    (matrix ? matrices : others).insert(item.key(), item.value());
  }
  Muon muon(matrices, kMuon);
  AdamW adamw(others, kAdamW);

  hybrid.step();
  muon.step();
  adamw.step();
  const auto ours = model->named_parameters();
  const auto theirs = twin->named_parameters();
  for (const auto& item : ours) {
    EXPECT_TENSOR_NEAR(item.value().detach(), theirs[item.key()].detach(), 0.0);
  }
  EXPECT_EQ(hybrid.routing().size(), ours.size());
}

// For finite gradients, step_known_finite() is step() less the check: the
// same weights bit for bit and the same count. Given a NaN it does not look
// (the caller vouched), which is what makes it cheaper.
TEST(MuonWithAuxAdamW, StepKnownFiniteIsStepWithoutTheCheck) {
  auto model = testing::make_tiny_model(1);
  auto twin = testing::make_tiny_model(1);
  const auto batch = testing::tiny_batch(2);
  MuonWithAuxAdamW checked(model->named_parameters(), kMuon, kAdamW);
  MuonWithAuxAdamW trusted(twin->named_parameters(), kMuon, kAdamW);
  for (int step = 0; step < 2; ++step) {
    checked.zero_grad();
    trusted.zero_grad();
    model->loss(batch).backward();
    twin->loss(batch).backward();
    checked.step();
    trusted.step_known_finite();
  }
  EXPECT_EQ(trusted.step_count(), checked.step_count());
  const auto theirs = twin->named_parameters();
  for (const auto& item : model->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value().detach(), theirs[item.key()].detach())) << item.key();
  }

  twin->ln_f->weight.mutable_grad()[0] = std::numeric_limits<double>::quiet_NaN();
  trusted.step_known_finite();
  EXPECT_EQ(trusted.step_count(), 3);
  EXPECT_EQ(trusted.skipped_steps(), 0);
  EXPECT_TRUE(torch::isnan(twin->ln_f->weight.detach()[0]).item<bool>());
}

TEST(MuonWithAuxAdamW, TrainingLowersTheLoss) {
  auto model = testing::make_tiny_model(3);
  const auto batch = testing::tiny_batch(4);
  MuonWithAuxAdamW hybrid(model->named_parameters(), kMuon, kAdamW);
  const double initial = model->loss(batch).item<double>();
  for (int step = 0; step < 30; ++step) {
    hybrid.zero_grad();
    model->loss(batch).backward();
    hybrid.step();
  }
  EXPECT_LT(model->loss(batch).item<double>(), 0.5 * initial);
  EXPECT_EQ(hybrid.step_count(), 30);
}

}  // namespace
}  // namespace muonlab::optim
