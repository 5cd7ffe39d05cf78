// Every parameter carries a role and, for attention weights, a head layout
// that matches its shape; the formula-based statistics match a built model.
#include <gtest/gtest.h>

#include "models/model_test_util.h"
#include "muonlab/models/model_stats.h"
#include "muonlab/models/transformer.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

using optim::HeadAxis;
using optim::ParamRole;
using testing::tiny_config;

std::map<std::string, optim::TaggedParam> tags_by_name(const Transformer& model) {
  std::map<std::string, optim::TaggedParam> out;
  for (auto& p : model->tagged_parameters()) out[p.name] = p;
  return out;
}

TEST(ParamTags, Gpt2FusedQkvHasThreeSegmentsOfHeadsInRows) {
  torch::manual_seed(0);
  Transformer model(tiny_config("tiny-gpt2"));
  auto tags = tags_by_name(model);
  const auto& qkv = tags.at("h.1.attn.c_attn.weight");
  EXPECT_EQ(qkv.role, ParamRole::kAttnQKV);
  EXPECT_EQ(qkv.layer, 1);
  ASSERT_TRUE(qkv.heads);
  EXPECT_EQ(qkv.heads->axis, HeadAxis::kRows);
  EXPECT_EQ(qkv.heads->num_heads * qkv.heads->head_dim, qkv.tensor.size(0));
  EXPECT_EQ(qkv.heads->segment_heads, (std::vector<int64_t>{4, 4, 4}));
  const auto& out = tags.at("h.0.attn.c_proj.weight");
  EXPECT_EQ(out.role, ParamRole::kAttnO);
  EXPECT_EQ(out.heads->axis, HeadAxis::kCols);
  EXPECT_EQ(out.heads->num_heads * out.heads->head_dim, out.tensor.size(1));
  EXPECT_EQ(tags.at("h.0.attn.c_attn.bias").role, ParamRole::kBias);
  EXPECT_EQ(tags.at("wte.weight").role, ParamRole::kEmbedding);
  EXPECT_EQ(tags.at("wpe.weight").role, ParamRole::kEmbedding);
  EXPECT_EQ(tags.at("h.0.ln_1.weight").role, ParamRole::kNorm);
  EXPECT_EQ(tags.at("h.0.mlp.c_fc.weight").role, ParamRole::kMlp);
  EXPECT_EQ(tags.count("lm_head.weight"), 0u);  // tied to wte
}

TEST(ParamTags, EveryAttentionWeightsLayoutCoversItsShape) {
  for (const auto* preset : {"tiny-gpt2", "tiny-llama", "tiny-mla-moe"}) {
    for (const bool gqa : {false, true}) {
      SCOPED_TRACE(std::string(preset) + (gqa ? " with GQA" : ""));
      if (gqa && std::string(preset) == "tiny-mla-moe") continue;
      torch::manual_seed(0);
      Transformer model(tiny_config(preset, gqa ? std::vector<std::string>{"n_kv_head=2"}
                                                : std::vector<std::string>{}));
      int64_t with_heads = 0;
      for (const auto& p : model->tagged_parameters()) {
        if (!p.heads) continue;
        ++with_heads;
        const int64_t axis = p.heads->axis == HeadAxis::kRows ? 0 : 1;
        EXPECT_EQ(p.heads->num_heads * p.heads->head_dim, p.tensor.size(axis)) << p.name;
        if (!p.heads->segment_heads.empty()) {
          int64_t sum = 0;
          for (auto h : p.heads->segment_heads) sum += h;
          EXPECT_EQ(sum, p.heads->num_heads) << p.name;
        }
      }
      EXPECT_GT(with_heads, 0);
    }
  }
}

TEST(ParamTags, MlaAndMoeRolesAndStackedExperts) {
  torch::manual_seed(0);
  Transformer model(tiny_config("tiny-mla-moe"));
  auto tags = tags_by_name(model);
  EXPECT_EQ(tags.at("h.0.attn.wdkv.weight").role, ParamRole::kMlaDown);
  EXPECT_EQ(tags.at("h.0.attn.wuk.weight").role, ParamRole::kMlaUp);
  EXPECT_EQ(tags.at("h.0.attn.wuk.weight").heads->num_heads, 4);
  EXPECT_EQ(tags.at("h.0.attn.wqr.weight").heads->head_dim, 4);  // d_R
  EXPECT_EQ(tags.at("h.0.attn.kv_norm.weight").role, ParamRole::kNorm);
  EXPECT_EQ(tags.at("h.1.moe.router.weight").role, ParamRole::kRouter);
  // Every routed expert's down projection in one [E, d, hidden] stack.
  const auto config = model->config();
  const auto& expert = tags.at("h.1.moe.experts.w2.weight");
  EXPECT_EQ(expert.role, ParamRole::kExpert);
  EXPECT_EQ(expert.tensor.sizes(), (std::vector<int64_t>{config.moe.num_routed, config.d_model, config.moe.expert_hidden}));
  EXPECT_EQ(expert.layer, 1);
  EXPECT_EQ(tags.at("h.1.moe.experts.w1.weight").tensor.sizes(),
            (std::vector<int64_t>{config.moe.num_routed, config.moe.expert_hidden, config.d_model}));
  EXPECT_EQ(tags.at("h.0.moe.shared_0.w1.weight").role, ParamRole::kMlp);
  EXPECT_EQ(tags.at("lm_head.weight").role, ParamRole::kHead);
  // Routing: the router, embeddings, head and gains go to AdamW.
  EXPECT_EQ(optim::route(tags.at("h.1.moe.router.weight")), optim::OptimizerChoice::kAdamW);
  EXPECT_EQ(optim::route(expert), optim::OptimizerChoice::kMuon);
}

int64_t count_parameters(const Transformer& model) {
  int64_t n = 0;
  for (const auto& p : model->parameters()) n += p.numel();
  return n;
}

TEST(ModelStats, FormulaParameterCountMatchesTheBuiltModel) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> variants{
      {"tiny-gpt2", {}},
      {"tiny-gpt2", {"bias=false", "tie_embeddings=false", "norm=rmsnorm"}},
      {"tiny-llama", {}},
      {"tiny-llama", {"n_kv_head=1", "qk_norm=true", "bias=true", "fused_qkv=true"}},
      {"tiny-llama", {"mlp=gelu", "norm=layernorm", "bias=true"}},
      {"tiny-mla-moe", {}},
      {"tiny-mla-moe", {"mla.q_latent=0", "bias=true", "feed_forward=dense"}},
  };
  for (const auto& [preset, overrides] : variants) {
    const auto config = tiny_config(preset, overrides);
    SCOPED_TRACE(describe(config));
    torch::manual_seed(0);
    Transformer model(config);
    const auto stats = model_stats(config);
    EXPECT_EQ(stats.parameters, count_parameters(model));
    int64_t embeddings = 0, routed = 0, matmul = 0;
    for (const auto& p : model->tagged_parameters()) {
      if (p.role == ParamRole::kEmbedding) embeddings += p.tensor.numel();
      if (p.role == ParamRole::kExpert) routed += p.tensor.numel();
      if (p.tensor.dim() == 2 && p.role != ParamRole::kEmbedding && p.role != ParamRole::kExpert) {
        matmul += p.tensor.numel();
      }
    }
    EXPECT_EQ(stats.embedding_parameters, embeddings);
    if (config.feed_forward == FeedForwardKind::kMoe) {
      // Active: only top_k of num_routed experts' weights per token.
      const int64_t active_routed = routed / config.moe.num_routed * config.moe.top_k;
      EXPECT_EQ(stats.active_parameters, stats.parameters - routed + active_routed);
      matmul += active_routed;
    } else {
      EXPECT_EQ(stats.active_parameters, stats.parameters);
    }
    if (config.tie_embeddings) matmul += config.vocab_size * config.d_model;  // the head
    EXPECT_EQ(stats.active_matmul_weights, matmul);
  }
}

TEST(ModelStats, Gpt2SmallHasTheKnownSizeAndFlops) {
  const auto config = model_preset("gpt2-small");
  const auto stats = model_stats(config);
  EXPECT_EQ(stats.parameters, 124439808);  // nanoGPT's count for the 50257-token vocabulary
  // nanoGPT's estimate: 6 N + 12 L H Q T with N = parameters minus wpe.
  const double n = static_cast<double>(stats.parameters - config.block_size * config.d_model);
  const double expected = 6 * n + 12.0 * 12 * 12 * 64 * 1024;
  // Ours counts matmul weights only (no biases or gains, which nanoGPT includes).
  EXPECT_NEAR(stats.training_flops_per_token(1024) / expected, 1.0, 1e-3);
}

TEST(ModelStats, MlaCachesFarLessThanMhaAtTheSameWidth) {
  auto mla = model_preset("mla-moe-small");
  auto mha = mla;
  mha.attention = AttentionKind::kMha;
  const auto mla_numbers = model_stats(mla).kv_cache_numbers_per_token;
  const auto mha_numbers = model_stats(mha).kv_cache_numbers_per_token;
  EXPECT_EQ(mla_numbers, (256 + 32) * 8);
  EXPECT_EQ(mha_numbers, 2 * 512 * 8);
}

}  // namespace
}  // namespace muonlab::models
