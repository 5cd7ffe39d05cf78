// Presets are valid and bad configs fail with a message naming the field.
#include <gtest/gtest.h>

#include "muonlab/core/torch_compat.h"
#include "muonlab/models/model_config.h"
#include "muonlab/models/transformer.h"
#include "models/model_test_util.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

using testing::error_message;
using testing::tiny_config;

std::string config_error(const std::vector<std::string>& overrides,
                         const std::string& preset = "tiny-llama") {
  return error_message([&] {
    auto config = model_preset(preset);
    for (const auto& o : overrides) apply_override(config, o);
    config.validate();
  });
}

TEST(ModelConfig, EveryPresetIsValid) {
  for (const auto& name : preset_names()) {
    SCOPED_TRACE(name);
    const auto config = model_preset(name);
    EXPECT_EQ(config.name, name);
    EXPECT_NO_THROW(config.validate());
  }
}

TEST(ModelConfig, PresetsHaveThePapersShapes) {
  const auto gpt2 = model_preset("gpt2-small");
  EXPECT_EQ(gpt2.n_layer, 12);
  EXPECT_EQ(gpt2.d_model, 768);
  EXPECT_EQ(gpt2.dense_hidden(), 3072);
  EXPECT_TRUE(gpt2.tie_embeddings);
  const auto mla = model_preset("mla-moe-small");
  EXPECT_EQ(mla.mla.kv_latent, mla.d_model / 2);  // latent rank d/2
  EXPECT_EQ(mla.moe.num_shared, 2);
  EXPECT_EQ(mla.moe.num_routed + mla.moe.num_shared, 64);
  EXPECT_EQ(mla.moe.top_k, 6);
}

TEST(ModelConfig, HeadsThatDoNotDivideTheWidthNameTheField) {
  const auto message = config_error({"n_head=5"});
  EXPECT_CONTAINS(message, "'n_head' = 5");
  EXPECT_CONTAINS(message, "d_model = 32");
}

TEST(ModelConfig, KvHeadsThatDoNotDivideTheHeadsNameTheField) {
  EXPECT_CONTAINS(config_error({"n_kv_head=3"}), "'n_kv_head' = 3");
}

TEST(ModelConfig, TopKLargerThanTheExpertsNamesTheField) {
  const auto message = config_error({"moe.top_k=7"}, "tiny-mla-moe");
  EXPECT_CONTAINS(message, "'moe.top_k' = 7");
  EXPECT_CONTAINS(message, "moe.num_routed = 6");
}

// A NaN or infinite epsilon, init scale, RoPE base or MoE coefficient would
// make every forward NaN; the checks say so before a model is built.
TEST(ModelConfig, NonFiniteNumbersNameTheField) {
  EXPECT_CONTAINS(config_error({"norm_eps=nan"}), "'norm_eps' = nan: expected a finite positive number");
  EXPECT_CONTAINS(config_error({"init_std=inf"}), "'init_std' = inf: expected a finite positive number");
  EXPECT_CONTAINS(config_error({"rope_theta=-1"}), "'rope_theta' = -1: expected a finite positive number");
  EXPECT_CONTAINS(config_error({"moe.capacity_factor=nan"}, "tiny-mla-moe"),
                  "'moe.capacity_factor' = nan: expected 0 (dropless) or a finite positive number");
  EXPECT_CONTAINS(config_error({"moe.balance_coef=inf"}, "tiny-mla-moe"),
                  "'moe.balance_coef' = inf: expected 0 or a finite positive number");
}

TEST(ModelConfig, UnknownPresetListsTheKnownOnes) {
  const auto message = error_message([] { model_preset("gpt5"); });
  EXPECT_CONTAINS(message, "unknown model preset 'gpt5': expected one of");
  EXPECT_CONTAINS(message, "gpt2-small");
  EXPECT_CONTAINS(error_message([] { model_preset("gpt2-smal"); }),
                  "unknown model preset 'gpt2-smal' (did you mean 'gpt2-small'?)");
}

TEST(ModelConfig, BadOverridesNameKeyAndValue) {
  EXPECT_CONTAINS(config_error({"n_layers=2"}), "unknown model config field 'n_layers'");
  EXPECT_CONTAINS(config_error({"n_layer=two"}), "'n_layer': 'two' is not an integer");
  EXPECT_CONTAINS(config_error({"norm=batchnorm"}), "'batchnorm' is not one of layernorm, rmsnorm");
  EXPECT_CONTAINS(config_error({"norm=rmsnrom"}),
                  "'rmsnrom' is not one of layernorm, rmsnorm (did you mean 'rmsnorm'?)");
  EXPECT_CONTAINS(config_error({"bias=maybe"}), "'bias': 'maybe' is not true or false");
  EXPECT_CONTAINS(config_error({"n_layer"}), "expected key=value");
  EXPECT_CONTAINS(config_error({"d_model=0"}), "'d_model' = 0");
  EXPECT_CONTAINS(config_error({"mla.rope_dim=3"}, "tiny-mla-moe"), "'mla.rope_dim' = 3");
  EXPECT_CONTAINS(config_error({"logit_softcap=-1"}), "'logit_softcap' = -1: expected 0 (off) or a positive cap");
  EXPECT_CONTAINS(config_error({"mlp=relu"}), "'relu' is not one of gelu, swiglu, relu2");
  EXPECT_CONTAINS(config_error({"moe.capacity_factor=-1"}, "tiny-mla-moe"),
                  "'moe.capacity_factor'");
  EXPECT_CONTAINS(config_error({"moe.dispatch=sorted"}, "tiny-mla-moe"),
                  "'moe.dispatch': 'sorted' is not one of auto, looped, batched, grouped");
}

TEST(ModelConfig, GroupedDispatchNeedsLibTorch29AndAlignedSizes) {
  if (!compat::kHasGroupedMm) {
    const auto message = config_error({"moe.dispatch=grouped"}, "tiny-mla-moe");
    EXPECT_CONTAINS(message, "'moe.dispatch' = grouped: needs LibTorch 2.9 or later");
    EXPECT_CONTAINS(message, compat::torch_version());
    return;
  }
  EXPECT_EQ(config_error({"moe.dispatch=grouped"}, "tiny-mla-moe"), "");
  EXPECT_CONTAINS(config_error({"moe.dispatch=grouped", "moe.expert_hidden=20"}, "tiny-mla-moe"),
                  "'moe.expert_hidden' = 20: moe.dispatch = grouped needs a multiple of 8");
  EXPECT_CONTAINS(config_error({"moe.dispatch=grouped", "d_model=36", "n_head=2"}, "tiny-mla-moe"),
                  "'d_model' = 36: moe.dispatch = grouped needs a multiple of 8");
}

TEST(ModelConfig, DenseTwinHasTheMoeModelsActiveFeedForward) {
  const auto moe = model_preset("mla-moe-small");
  const auto dense = model_preset("mla-dense-small");
  EXPECT_EQ(dense.feed_forward, FeedForwardKind::kDense);
  EXPECT_EQ(dense.attention, AttentionKind::kMla);
  // (2 shared + top-6) experts of hidden 128, one SwiGLU of hidden 1024.
  EXPECT_EQ(dense.mlp_hidden, (moe.moe.num_shared + moe.moe.top_k) * moe.moe.expert_hidden);
  EXPECT_EQ(dense.dense_hidden(), 1024);
  EXPECT_EQ(dense.d_model, moe.d_model);
  EXPECT_EQ(dense.n_layer, moe.n_layer);
}

TEST(ModelConfig, DescribeRoundTripsThroughOverrides) {
  auto original = model_preset("mla-moe-small");
  apply_override(original, "moe.capacity_factor=1.25");
  apply_override(original, "moe.dispatch=batched");
  ModelConfig rebuilt;
  std::istringstream lines(describe(original));
  for (std::string line; std::getline(lines, line);) apply_override(rebuilt, line);
  EXPECT_EQ(describe(rebuilt), describe(original));
  EXPECT_DOUBLE_EQ(rebuilt.moe.capacity_factor, 1.25);
  EXPECT_EQ(rebuilt.moe.dispatch, MoeDispatch::kBatched);
}

// Capped logits: cap * tanh(z / cap) of the uncapped model's logits z,
// with the same weights; always inside (-cap, cap).
TEST(ModelConfig, LogitSoftcapCapsTheLogitsSmoothly) {
  torch::manual_seed(12);
  Transformer capped(tiny_config("tiny-gpt2", {"logit_softcap=0.3"}));
  Transformer plain(tiny_config("tiny-gpt2"));
  capped->to(torch::kFloat64);
  plain->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    const auto from = capped->named_parameters();
    for (auto& item : plain->named_parameters()) item.value().copy_(from[item.key()]);
  }
  torch::NoGradGuard no_grad;
  const auto tokens = torch::randint(0, 64, {2, 7});
  const auto z = plain(tokens).logits;
  const auto logits = capped(tokens).logits;
  EXPECT_TENSOR_NEAR(logits, 0.3 * torch::tanh(z / 0.3), 1e-12);
  EXPECT_LT(logits.abs().max().item<double>(), 0.3);
  EXPECT_GT(z.abs().max().item<double>(), 0.3) << "the cap must bind somewhere for the test to mean anything";
}

TEST(ModelConfig, SwigluHiddenKeepsTheGeluParameterCountRoundedTo64) {
  ModelConfig config;
  config.mlp = MlpKind::kSwiglu;
  config.d_model = 768;
  EXPECT_EQ(config.dense_hidden(), 2048);  // 8 * 768 / 3 = 2048
  config.d_model = 100;
  EXPECT_EQ(config.dense_hidden(), 320);   // 267 rounded up to a multiple of 64
}

}  // namespace
}  // namespace muonlab::models
