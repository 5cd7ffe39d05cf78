// Role inference and routing on a two-layer model with nanoGPT's names.
#include "muonlab/optimizers/param_role.h"

#include <map>

#include "test_util.h"
#include "tiny_model.h"

namespace muonlab::optim {
namespace {

TEST(ParamRole, RoutesEveryParameterOfATwoLayerModel) {
  const auto model = testing::make_tiny_model(1);
  // Written out by hand: what each parameter is and where it must go.
  const std::map<std::string, std::pair<ParamRole, OptimizerChoice>> expected = {
      {"wte.weight", {ParamRole::kEmbedding, OptimizerChoice::kAdamW}},
      {"wpe.weight", {ParamRole::kEmbedding, OptimizerChoice::kAdamW}},
      {"ln_f.weight", {ParamRole::kNorm, OptimizerChoice::kAdamW}},
      {"ln_f.bias", {ParamRole::kBias, OptimizerChoice::kAdamW}},
      {"lm_head.weight", {ParamRole::kHead, OptimizerChoice::kAdamW}},
  };
  const auto tagged = tag_parameters(model->named_parameters());
  ASSERT_EQ(tagged.size(), 5u + 2 * 12);
  int muon_count = 0;
  for (const auto& p : tagged) {
    SCOPED_TRACE(p.name);
    if (auto it = expected.find(p.name); it != expected.end()) {
      EXPECT_EQ(p.role, it->second.first);
      EXPECT_EQ(route(p), it->second.second);
      continue;
    }
    // Inside the blocks: Linear weights to Muon; biases and LayerNorm gains to AdamW.
    const bool is_linear_weight =
        p.name.find("ln_") == std::string::npos && p.name.find(".weight") != std::string::npos;
    if (is_linear_weight) {
      EXPECT_EQ(p.role, ParamRole::kMatrix);
      EXPECT_EQ(route(p), OptimizerChoice::kMuon);
      ++muon_count;
    } else {
      EXPECT_EQ(route(p), OptimizerChoice::kAdamW);
      EXPECT_TRUE(p.role == ParamRole::kBias || p.role == ParamRole::kNorm);
    }
  }
  EXPECT_EQ(muon_count, 8);  // 4 matrices in each of 2 blocks
}

TEST(ParamRole, ExplicitMarksOverrideShape) {
  TaggedParam router{"moe.router.weight", torch::randn({8, 16}), ParamRole::kRouter};
  EXPECT_EQ(route(router), OptimizerChoice::kAdamW);
  TaggedParam marked{"h.0.fc.weight", torch::randn({16, 16}), ParamRole::kMlp, true};
  EXPECT_EQ(route(marked), OptimizerChoice::kAdamW);
  TaggedParam query{"h.0.attn.q.weight", torch::randn({16, 16}), ParamRole::kAttnQ};
  EXPECT_EQ(route(query), OptimizerChoice::kMuon);
}

TEST(ParamRole, NamesRoundTrip) {
  for (const auto* name : {"matrix", "embedding", "head", "attn_q", "attn_qkv", "mla_up",
                           "expert", "router", "norm", "bias", "scalar"}) {
    EXPECT_EQ(to_string(parse_param_role(name)), name);
  }
  EXPECT_NE(testing::error_message([] { parse_param_role("gate"); }).find("'gate'"),
            std::string::npos);
}

}  // namespace
}  // namespace muonlab::optim
