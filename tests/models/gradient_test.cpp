// Gradients of every block type against float64 central differences.
#include <gtest/gtest.h>

#include "models/model_test_util.h"
#include "muonlab/models/latent_attention.h"
#include "muonlab/models/mlp.h"
#include "muonlab/models/moe.h"
#include "muonlab/models/self_attention.h"
#include "muonlab/models/transformer.h"

namespace muonlab::models {
namespace {

using testing::expect_gradients_match_finite_differences;
using testing::parameters_of;
using testing::tiny_config;

constexpr int64_t kBatch = 2;
constexpr int64_t kTime = 5;

// A weighted sum of the output, so every output entry matters differently.
struct Probe {
  torch::Tensor input;
  torch::Tensor weights;
};

Probe probe_for(const ModelConfig& config, uint64_t seed) {
  torch::manual_seed(seed);
  auto input = torch::randn({kBatch, kTime, config.d_model}, torch::kFloat64).requires_grad_();
  return {input, torch::randn({kBatch, kTime, config.d_model}, torch::kFloat64)};
}

std::shared_ptr<const RotaryEmbedding> rope_of(int64_t dim, const ModelConfig& config) {
  return std::make_shared<RotaryEmbedding>(dim, config.block_size, config.rope_theta);
}

template <typename Module>
void check_module(Module& module, const ModelConfig& config,
                  const std::function<torch::Tensor(const torch::Tensor&)>& run) {
  module->to(torch::kFloat64);
  const auto probe = probe_for(config, 7);
  auto tensors = parameters_of(*module);
  tensors.push_back({"input", probe.input});
  expect_gradients_match_finite_differences(
      [&] { return (run(probe.input) * probe.weights).sum(); }, tensors);
}

TEST(ModelGradients, MultiHeadAttentionFusedWithBias) {
  const auto config = tiny_config("tiny-gpt2");
  torch::manual_seed(1);
  SelfAttention attention(config, nullptr);
  check_module(attention, config, [&](const torch::Tensor& x) { return attention(x); });
}

TEST(ModelGradients, GroupedQueryAttentionWithRopeAndQkNorm) {
  const auto config = tiny_config("tiny-llama", {"n_kv_head=2", "qk_norm=true"});
  torch::manual_seed(2);
  SelfAttention attention(config, rope_of(config.head_dim(), config));
  check_module(attention, config, [&](const torch::Tensor& x) { return attention(x); });
}

TEST(ModelGradients, LatentAttentionWithQueryCompression) {
  const auto config = tiny_config("tiny-mla-moe");
  ASSERT_GT(config.mla.q_latent, 0);
  torch::manual_seed(3);
  LatentAttention attention(config, rope_of(config.mla.rope_dim, config));
  check_module(attention, config, [&](const torch::Tensor& x) { return attention(x); });
}

TEST(ModelGradients, LatentAttentionWithoutQueryCompressionWithBias) {
  const auto config = tiny_config("tiny-mla-moe", {"mla.q_latent=0", "bias=true"});
  torch::manual_seed(4);
  LatentAttention attention(config, rope_of(config.mla.rope_dim, config));
  check_module(attention, config, [&](const torch::Tensor& x) { return attention(x); });
}

TEST(ModelGradients, GeluMlp) {
  const auto config = tiny_config("tiny-gpt2");
  torch::manual_seed(5);
  Mlp mlp(MlpKind::kGelu, config.d_model, config.dense_hidden(), true);
  check_module(mlp, config, [&](const torch::Tensor& x) { return mlp(x); });
}

TEST(ModelGradients, SwigluMlp) {
  const auto config = tiny_config("tiny-llama");
  torch::manual_seed(6);
  Mlp mlp(MlpKind::kSwiglu, config.d_model, config.dense_hidden(), false);
  check_module(mlp, config, [&](const torch::Tensor& x) { return mlp(x); });
}

TEST(ModelGradients, ReluSquaredMlp) {
  const auto config = tiny_config("tiny-gpt2");
  torch::manual_seed(7);
  Mlp mlp(MlpKind::kRelu2, config.d_model, config.dense_hidden(), true);
  check_module(mlp, config, [&](const torch::Tensor& x) { return mlp(x); });
  // And it is c_proj(relu(c_fc x)^2), written with the layers' own tensors.
  const auto x = torch::randn({kBatch, kTime, config.d_model}, torch::kFloat64);
  const auto p = mlp->named_parameters();
  const auto hidden = torch::linear(x, p["c_fc.weight"], p["c_fc.bias"]);
  const auto expected = torch::linear(torch::where(hidden > 0, hidden * hidden, torch::zeros_like(hidden)),
                                      p["c_proj.weight"], p["c_proj.bias"]);
  EXPECT_TENSOR_NEAR(mlp(x), expected, 1e-12);
}

TEST(ModelGradients, MixtureOfExpertsWithBalanceLoss) {
  // balance_coef large enough that the aux loss gradient is visible.
  const auto config = tiny_config("tiny-mla-moe", {"moe.balance_coef=0.5"});
  torch::manual_seed(8);
  Moe moe(config);
  moe->to(torch::kFloat64);
  const auto probe = probe_for(config, 9);
  // Every parameter and the input; the stacked experts' slices of experts
  // no token chose have zero gradient, as their finite differences do.
  std::vector<testing::NamedTensor> tensors;
  for (const auto& item : moe->named_parameters()) tensors.push_back({item.key(), item.value()});
  tensors.push_back({"input", probe.input});
  expect_gradients_match_finite_differences(
      [&] {
        const auto out = moe(probe.input);
        return (out.output * probe.weights).sum() + out.balance_loss;
      },
      tensors);
}

TEST(ModelGradients, WholeTinyModelsThroughTheLoss) {
  // The last: modded-nanogpt's choices, ReLU squared and capped logits.
  const std::vector<std::pair<std::string, std::vector<std::string>>> models = {
      {"tiny-gpt2", {"n_layer=1"}},
      {"tiny-llama", {"n_layer=1"}},
      {"tiny-mla-moe", {"n_layer=1"}},
      {"tiny-gpt2", {"n_layer=1", "mlp=relu2", "logit_softcap=0.5"}}};
  for (const auto& [preset, overrides] : models) {
    SCOPED_TRACE(preset + " " + overrides.back());
    torch::manual_seed(10);
    Transformer model(tiny_config(preset, overrides));
    model->to(torch::kFloat64);
    const auto tokens = torch::randint(0, model->config().vocab_size, {kBatch, kTime});
    const auto targets = torch::randint(0, model->config().vocab_size, {kBatch, kTime});
    const auto loss = [&] { return training_loss(model(tokens), targets); };
    // Every parameter gets a gradient (the routed experts' stacks too).
    loss().backward();
    std::vector<testing::NamedTensor> tensors;
    for (const auto& p : model->tagged_parameters()) {
      EXPECT_TRUE(p.tensor.grad().defined()) << p.name << " got no gradient";
      tensors.push_back({p.name, p.tensor});
    }
    expect_gradients_match_finite_differences(loss, tensors, 4);
  }
}

}  // namespace
}  // namespace muonlab::models
