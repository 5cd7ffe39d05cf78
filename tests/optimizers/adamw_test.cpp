// muonlab's AdamW against LibTorch's own torch::optim::AdamW.
#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/state_bytes.h"

#include <limits>

#include "test_util.h"

namespace muonlab::optim {
namespace {

std::vector<torch::Tensor> make_params(uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({6, 5}, torch::kFloat64).set_requires_grad(true),
          torch::randn({7}, torch::kFloat64).set_requires_grad(true),
          torch::randn({3, 2, 4}, torch::kFloat64).set_requires_grad(true)};
}

TEST(AdamW, MatchesLibTorchAdamWWithTwoGroups) {
  auto ours = make_params(1);
  auto theirs = make_params(1);
  const auto betas = std::make_tuple(0.9, 0.95);

  std::vector<torch::optim::OptimizerParamGroup> our_groups;
  our_groups.emplace_back(std::vector<torch::Tensor>{ours[0], ours[1]});
  our_groups.emplace_back(std::vector<torch::Tensor>{ours[2]},
                          std::make_unique<AdamWOptions>(
                              AdamWOptions(3e-2).betas(betas).weight_decay(0.0).eps(1e-6)));
  AdamW adamw(our_groups, AdamWOptions(1e-2).betas(betas).weight_decay(0.1));

  std::vector<torch::optim::OptimizerParamGroup> their_groups;
  their_groups.emplace_back(std::vector<torch::Tensor>{theirs[0], theirs[1]});
  their_groups.emplace_back(
      std::vector<torch::Tensor>{theirs[2]},
      std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(3e-2).betas(betas).weight_decay(0.0).eps(1e-6)));
  torch::optim::AdamW reference(their_groups,
                                torch::optim::AdamWOptions(1e-2).betas(betas).weight_decay(0.1));

  torch::manual_seed(2);
  for (int step = 0; step < 6; ++step) {
    for (size_t i = 0; i < ours.size(); ++i) {
      const auto grad = torch::randn_like(ours[i]);
      ours[i].mutable_grad() = grad.clone();
      theirs[i].mutable_grad() = grad.clone();
    }
    adamw.step();
    reference.step();
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_TENSOR_NEAR(ours[i].detach(), theirs[i].detach(), 1e-14);
  }
}

// The multi-tensor step batches parameters by device, dtype and step count;
// on the CPU it must be adamw_step, op for op. The middle parameter misses a
// gradient at step 2, so from then on its step count lags the others' and it
// is batched on its own.
TEST(AdamW, MultiTensorStepIsThePerParameterStepBitForBit) {
  torch::manual_seed(3);
  const std::vector<torch::Tensor> initial = {torch::randn({6, 5}), torch::randn({7}), torch::randn({3, 2, 4})};
  std::vector<torch::Tensor> params;
  for (const auto& t : initial) params.push_back(t.clone().set_requires_grad(true));
  const auto options = AdamWOptions(1e-2).weight_decay(0.1).eps(1e-6);
  AdamW adamw(params, options);

  std::vector<torch::Tensor> reference, exp_avgs, exp_avg_sqs;
  std::vector<int64_t> steps(initial.size(), 0);
  for (const auto& t : initial) {
    reference.push_back(t.clone());
    exp_avgs.push_back(torch::zeros_like(t));
    exp_avg_sqs.push_back(torch::zeros_like(t));
  }
  for (int step = 1; step <= 4; ++step) {
    for (size_t i = 0; i < params.size(); ++i) {
      const bool skipped = (i == 1 && step == 2);
      const auto grad = torch::randn_like(params[i]);
      params[i].mutable_grad() = skipped ? torch::Tensor() : grad;
      if (!skipped) adamw_step(reference[i], grad, exp_avgs[i], exp_avg_sqs[i], ++steps[i], options);
    }
    adamw.step();
  }
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i].detach(), reference[i])) << "parameter " << i;
  }
}

TEST(AdamW, WithoutBiasCorrectionTakesTheRawMoments) {
  // One step from zero moments without bias correction:
  // m = (1 - b1) g, v = (1 - b2) g^2, step = lr m / (sqrt(v) + eps).
  auto p = torch::zeros({5}, torch::kFloat64).set_requires_grad(true);
  const auto g = torch::tensor({1.0, -2.0, 0.5, 3.0, -0.25}, torch::kFloat64);
  p.mutable_grad() = g.clone();
  AdamW adamw(std::vector<torch::Tensor>{p},
              AdamWOptions(0.1).weight_decay(0).bias_correction(false).eps(1e-8));
  adamw.step();
  const auto m = 0.1 * g;
  const auto v = 0.05 * g * g;
  EXPECT_TENSOR_NEAR(p.detach(), -0.1 * m / (v.sqrt() + 1e-8), 1e-14);
}

TEST(AdamW, RejectsInvalidOptionsByField) {
  const std::vector<torch::Tensor> params{torch::randn({3})};
  const auto message = testing::error_message(
      [&] { AdamW a(params, AdamWOptions().betas(std::make_tuple(0.9, 1.0))); });
  EXPECT_NE(message.find("beta2 = 1"), std::string::npos) << message;
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_CONTAINS(testing::error_message([&] { AdamW a(params, AdamWOptions(inf)); }),
                  "AdamW lr = inf: expected a finite number >= 0");
  EXPECT_CONTAINS(testing::error_message([&] { AdamW a(params, AdamWOptions().weight_decay(inf)); }),
                  "AdamW weight_decay = inf: expected a finite number >= 0");
  EXPECT_CONTAINS(testing::error_message([&] { AdamW a(params, AdamWOptions().eps(inf)); }),
                  "AdamW eps = inf: expected a finite number > 0");
}

}  // namespace
}  // namespace muonlab::optim

namespace muonlab::optim {
namespace {

// Sharded AdamW (ZeRO-1): a rank steps, and keeps the moments of, only the
// parameters it owns; those move exactly as under an AdamW that owns all.
TEST(AdamWOwnership, StepsAndKeepsStateOnlyForOwnedParameters) {
  torch::manual_seed(3);
  auto make = [] {
    std::vector<torch::Tensor> params = {torch::randn({4, 3}), torch::randn({5})};
    for (auto& p : params) {
      p.set_requires_grad(true);
      p.mutable_grad() = torch::ones_like(p);
    }
    return params;
  };
  auto whole = make();
  auto shard = make();
  for (size_t i = 0; i < whole.size(); ++i) shard[i].detach().copy_(whole[i].detach());
  AdamW all(whole, AdamWOptions(0.1));
  AdamW mine(shard, AdamWOptions(0.1));
  const auto owned = shard[0].unsafeGetTensorImpl();
  mine.set_ownership([owned](const torch::Tensor& p) { return p.unsafeGetTensorImpl() == owned; });
  const auto untouched = shard[1].detach().clone();
  for (int step = 0; step < 2; ++step) {
    all.step();
    mine.step();
  }
  EXPECT_TRUE(torch::equal(shard[0], whole[0]));
  EXPECT_TRUE(torch::equal(shard[1], untouched));
  EXPECT_FALSE(torch::equal(whole[1], untouched));
  EXPECT_TRUE(mine.has_state(shard[0]));
  EXPECT_FALSE(mine.has_state(shard[1]));
  EXPECT_EQ(optimizer_state_bytes(mine), 2 * 12 * 4);  // two fp32 moments of the 4 x 3 weight
}

}  // namespace
}  // namespace muonlab::optim
