// QK-clip (docs/algorithms.md, QK-clip): after qk_clip(tau), the same
// input gives each head of the clipped layer a largest logit of exactly
// min(S_h, tau), for MHA (query and key rows by sqrt(gamma), biases
// included), GQA (query rows by gamma), fused and separate projections, and
// MLA (content rows by sqrt(gamma), rotary query by gamma); evaluation and
// cached decoding record nothing; tracking changes no output.
#include <gtest/gtest.h>

#include <limits>

#include "models/model_test_util.h"
#include "muonlab/models/transformer.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

constexpr double kNoClip = std::numeric_limits<double>::infinity();

// One layer (so its input does not change with the clip), weights scaled up
// so logits are large and differ between heads.
Transformer large_logit_model(const std::string& preset, std::vector<std::string> overrides) {
  overrides.push_back("n_layer=1");
  torch::manual_seed(3);
  Transformer model(testing::tiny_config(preset, overrides));
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) {
    if (p.dim() == 2) p.normal_(0, 0.5);
    if (p.dim() == 1 && p.numel() > 0) p.normal_(0.1, 0.3);
  }
  model->train();
  return model;
}

torch::Tensor tokens() {
  torch::manual_seed(4);
  return torch::randint(0, 64, {2, 16}, torch::kLong);
}

// The per-head maxima of one training forward on tokens().
torch::Tensor observed_maxima(Transformer& model) {
  model->track_max_logits(true);
  model(tokens());
  return model->qk_clip(kNoClip)[0];  // gamma = 1: reads and forgets
}

void expect_clipped_to_tau(const std::string& preset, const std::vector<std::string>& overrides) {
  SCOPED_TRACE(preset + " " + ::testing::PrintToString(overrides));
  auto model = large_logit_model(preset, overrides);
  const torch::Tensor before = observed_maxima(model);
  ASSERT_EQ(before.size(0), model->config().n_head);
  // Between the smallest and largest head's maximum: some heads are clipped, some not.
  const double tau = 0.5 * (before.min().item<double>() + before.max().item<double>());
  ASSERT_GT(before.max().item<double>(), tau);
  model->track_max_logits(true);
  model(tokens());
  const torch::Tensor acted_on = model->qk_clip(tau)[0];
  EXPECT_TRUE(torch::allclose(acted_on, before, 1e-6, 1e-6));
  const torch::Tensor after = observed_maxima(model);
  EXPECT_TRUE(torch::allclose(after, before.clamp_max(tau), 1e-4, 1e-4))
      << "before " << before << "\nafter " << after << "\ntau " << tau;
}

// Only heads above tau change; a head whose logits are all negative must
// not get a negative factor (its square root scales the weights).
TEST(QkClip, FactorsTouchOnlyHeadsAboveTau) {
  const auto maxima = torch::tensor({-3.0, 0.0, 2.0, 5.0, 8.0}, torch::kFloat32);
  const auto expected = torch::tensor({1.0, 1.0, 1.0, 1.0, 5.0 / 8.0}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(qk_clip_factors(maxima, 5.0), expected, 0, 1e-12)) << qk_clip_factors(maxima, 5.0);
}

TEST(QkClip, HeadsWithOnlyNegativeLogitsStayFinite) {
  auto model = large_logit_model("tiny-gpt2", {});
  {  // Queries -c and keys c for every token (weights 0, biases only): every logit is -|c_h|^2 / sqrt(D).
    torch::NoGradGuard no_grad;
    auto w = model->named_parameters()["h.0.attn.c_attn.weight"];
    auto b = model->named_parameters()["h.0.attn.c_attn.bias"];
    const int64_t d = model->config().d_model;
    w.narrow(0, 0, 2 * d).zero_();
    b.narrow(0, 0, d).copy_(-b.narrow(0, d, d));
  }
  const torch::Tensor before = observed_maxima(model);
  ASSERT_LT(before.max().item<double>(), 0) << before;
  const auto weights = model->named_parameters()["h.0.attn.c_attn.bias"].clone();
  model->track_max_logits(true);
  model(tokens());
  model->qk_clip(1.0);
  EXPECT_TRUE(torch::equal(model->named_parameters()["h.0.attn.c_attn.bias"], weights));
  for (const auto& p : model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST(QkClip, MhaWithBiasesHoldsEachHeadAtTau) { expect_clipped_to_tau("tiny-gpt2", {}); }
TEST(QkClip, SeparateProjectionsWithRopeHoldEachHeadAtTau) { expect_clipped_to_tau("tiny-llama", {}); }
TEST(QkClip, GqaClipsTheQueriesOfEachHeadAtTau) {
  expect_clipped_to_tau("tiny-llama", {"n_kv_head=2"});
  expect_clipped_to_tau("tiny-llama", {"n_kv_head=1", "fused_qkv=true"});
}
TEST(QkClip, MlaHoldsEachHeadAtTauLeavingTheSharedRotaryKey) {
  expect_clipped_to_tau("tiny-mla-moe", {});
  auto model = large_logit_model("tiny-mla-moe", {});
  const torch::Tensor shared_key = model->named_parameters()["h.0.attn.wkr.weight"].clone();
  observed_maxima(model);
  model->track_max_logits(true);
  model(tokens());
  model->qk_clip(0.1);
  EXPECT_TRUE(torch::equal(model->named_parameters()["h.0.attn.wkr.weight"], shared_key));
}

TEST(QkClip, TrackingChangesNoOutputAndEvaluationRecordsNothing) {
  auto model = large_logit_model("tiny-gpt2", {});
  const torch::Tensor plain = model(tokens()).logits;
  model->track_max_logits(true);
  EXPECT_TRUE(torch::equal(model(tokens()).logits, plain));
  model->qk_clip(kNoClip);
  model->eval();
  model(tokens());
  EXPECT_FALSE(model->qk_clip(1e-3)[0].defined());  // nothing seen, nothing clipped
}

}  // namespace
}  // namespace muonlab::models
