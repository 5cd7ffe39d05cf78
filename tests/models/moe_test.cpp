// MoE against independent references: a dense SwiGLU, the layer's
// definition evaluated token by token (both ways of running the experts,
// values and gradients, with and without a capacity), a hand-computed
// balance loss, and capacity dropping exactly the overflow.
#include <gtest/gtest.h>

#include "models/model_test_util.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/models/moe.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

using testing::tiny_config;

ModelConfig moe_config(int64_t shared, int64_t routed, int64_t top_k,
                       const std::vector<std::string>& more = {}) {
  auto overrides = std::vector<std::string>{
      "moe.num_shared=" + std::to_string(shared), "moe.num_routed=" + std::to_string(routed),
      "moe.top_k=" + std::to_string(top_k)};
  overrides.insert(overrides.end(), more.begin(), more.end());
  return tiny_config("tiny-mla-moe", overrides);
}

TEST(Moe, OneExpertTopOneNoSharedEqualsTheDenseSwiglu) {
  const auto config = moe_config(0, 1, 1);
  torch::manual_seed(31);
  Moe moe(config);
  Mlp dense(MlpKind::kSwiglu, config.d_model, config.moe.expert_hidden, false);
  moe->to(torch::kFloat64);
  dense->to(torch::kFloat64);
  {
    // Expert 0's slices of the stacked weights, under the dense MLP's names.
    torch::NoGradGuard no_grad;
    const auto from = moe->routed_experts()->named_parameters();
    for (auto& item : dense->named_parameters()) item.value().copy_(from[item.key()][0]);
  }
  const auto x = torch::randn({3, 7, config.d_model}, torch::kFloat64);
  const auto out = moe(x);
  EXPECT_TENSOR_NEAR(out.output, dense(x), 1e-14);
  EXPECT_EQ(out.stats.dropped.item<int64_t>(), 0);
  EXPECT_DOUBLE_EQ(out.stats.load[0].item<double>(), 1.0);
}

// Routed expert e's SwiGLU, down(silu(gate x) * up x), written out from its
// slices of the stacked [E, out, in] weights (and [E, out] biases).
torch::Tensor expert_reference(Moe& moe, int64_t e, const torch::Tensor& x) {
  auto& experts = moe->routed_experts();
  const auto linear = [&](const ExpertProjection& p, const torch::Tensor& in) {
    const auto out = torch::mm(in, p->weight[e].t());
    return p->bias.defined() ? out + p->bias[e] : out;
  };
  return linear(experts->down, torch::silu(linear(experts->gate, x)) * linear(experts->up, x));
}

// The definition, one token at a time: shared experts plus
// sum over the top-k routed experts of gate * expert(x_t), gates from the
// softmax over the router's logits, renormalized over the chosen k. With a
// capacity, an expert takes only the first `capacity` tokens that chose it.
torch::Tensor per_token_reference(Moe& moe, const ModelConfig& config, const torch::Tensor& x,
                                  int64_t capacity = 0) {
  const auto tokens = x.reshape({-1, config.d_model});
  std::vector<int64_t> taken(config.moe.num_routed, 0);
  std::vector<torch::Tensor> rows;
  for (int64_t t = 0; t < tokens.size(0); ++t) {
    const auto token = tokens.narrow(0, t, 1);
    auto row = torch::zeros_like(token);
    for (const auto& child : moe->named_children()) {
      if (child.key().rfind("shared_", 0) == 0) row = row + child.value()->as<MlpImpl>()->forward(token);
    }
    const auto scores = torch::softmax(moe->router()(token), -1)[0];
    const auto [top, chosen] = scores.topk(config.moe.top_k);
    for (int64_t j = 0; j < config.moe.top_k; ++j) {
      const auto expert = chosen[j].item<int64_t>();
      if (capacity > 0 && taken[expert]++ >= capacity) continue;
      const auto gate = top[j] / top.sum();
      row = row + gate * expert_reference(moe, expert, token);
    }
    rows.push_back(row);
  }
  return torch::cat(rows).view(x.sizes());
}

struct DispatchCase {
  std::string dispatch;
  bool bias;
  // Grouped GEMM takes float32 (bf16, fp16) but not float64: its cases
  // compare in float32, where the sums' rounding differs by order.
  torch::ScalarType dtype = torch::kFloat64;
  double tolerance = 1e-13;
};

// Grouped GEMM exists from LibTorch 2.9; older builds reject the setting
// (ModelConfig.GroupedDispatchNeedsLibTorch29AndAlignedSizes).
class MoeDispatchTest : public ::testing::TestWithParam<DispatchCase> {
 protected:
  void SetUp() override {
    if (GetParam().dispatch == "grouped" && !compat::kHasGroupedMm) {
      GTEST_SKIP() << "grouped GEMM needs LibTorch 2.9 or later; this is "
                   << compat::torch_version();
    }
  }
};

// The layer's output on x, and the gradients of <weights, output> for the
// input and every parameter (routed experts no token chose included),
// against those of the per-token definition.
void expect_the_per_token_definition(Moe& moe, const ModelConfig& config, const torch::Tensor& x,
                                     int64_t capacity, const DispatchCase& param) {
  const auto weights = torch::randn(x.sizes(), param.dtype);
  const auto out = moe(x).output;
  const auto reference = per_token_reference(moe, config, x, capacity);
  EXPECT_TENSOR_NEAR(out, reference, param.tolerance);

  const auto params = moe->parameters();
  std::vector<torch::Tensor> inputs{x};
  inputs.insert(inputs.end(), params.begin(), params.end());
  const auto grads = torch::autograd::grad({(out * weights).sum()}, inputs, {}, true, false, true);
  const auto expected = torch::autograd::grad({(reference * weights).sum()}, inputs, {}, true,
                                              false, true);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto got = grads[i].defined() ? grads[i] : torch::zeros_like(inputs[i]);
    const auto want = expected[i].defined() ? expected[i] : torch::zeros_like(inputs[i]);
    SCOPED_TRACE(i == 0 ? std::string("input") : "parameter " + std::to_string(i - 1));
    EXPECT_TENSOR_NEAR(got, want, param.tolerance);
  }
}

TEST_P(MoeDispatchTest, OutputAndGradientsEqualThePerTokenDefinition) {
  const auto& param = GetParam();
  const auto config = moe_config(
      2, 5, 2, {"moe.dispatch=" + param.dispatch, param.bias ? "bias=true" : "bias=false"});
  torch::manual_seed(35);
  Moe moe(config);
  moe->to(param.dtype);
  const auto x = torch::randn({2, 6, config.d_model}, param.dtype).requires_grad_(true);
  expect_the_per_token_definition(moe, config, x, 0, param);
}

// Under a capacity the dropped assignments give nothing, gradients
// included: the grouped dispatch keeps them with a zero gate instead of
// removing them, which must come to the same.
TEST_P(MoeDispatchTest, UnderCapacityOutputAndGradientsEqualThePerTokenDefinition) {
  const auto& param = GetParam();
  const auto config = moe_config(1, 4, 2, {"moe.dispatch=" + param.dispatch, "moe.capacity_factor=0.75",
                                           param.bias ? "bias=true" : "bias=false"});
  torch::manual_seed(36);
  Moe moe(config);
  moe->to(param.dtype);
  const auto x = torch::randn({2, 12, config.d_model}, param.dtype).requires_grad_(true);
  const auto stats = moe(x).stats;
  ASSERT_EQ(stats.capacity, 9);  // ceil(0.75 * 24 * 2 / 4)
  ASSERT_GT(stats.dropped.item<int64_t>(), 0);
  expect_the_per_token_definition(moe, config, x, stats.capacity, param);
}

INSTANTIATE_TEST_SUITE_P(Dispatch, MoeDispatchTest,
                         ::testing::Values(DispatchCase{"looped", false},
                                           DispatchCase{"batched", false},
                                           DispatchCase{"batched", true},
                                           DispatchCase{"looped", true},
                                           DispatchCase{"grouped", false, torch::kFloat32, 1e-5},
                                           DispatchCase{"grouped", true, torch::kFloat32, 1e-5}),
                         [](const auto& info) {
                           return info.param.dispatch + (info.param.bias ? "_bias" : "");
                         });

TEST(Moe, BalanceLossEqualsAHandComputation) {
  const auto config = moe_config(1, 4, 2, {"moe.balance_coef=0.01"});
  torch::manual_seed(32);
  Moe moe(config);
  moe->to(torch::kFloat64);
  const auto x = torch::randn({2, 5, config.d_model}, torch::kFloat64);
  const auto out = moe(x);

  // alpha * sum_i f_i P_i, f_i = N_r / (k T) * count_i, P_i = mean_t s_t,i.
  const auto tokens = x.reshape({-1, config.d_model});
  const auto logits = torch::mm(tokens, moe->router()->weight.t());
  const int64_t T = tokens.size(0), E = 4, k = 2;
  double expected = 0;
  std::vector<double> count(E, 0), mean_score(E, 0);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> s(E);
    double z = 0;
    for (int64_t e = 0; e < E; ++e) z += s[e] = std::exp(logits[t][e].item<double>());
    for (int64_t e = 0; e < E; ++e) mean_score[e] += s[e] / z / T;
    std::vector<int64_t> order{0, 1, 2, 3};
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return s[a] > s[b]; });
    for (int64_t j = 0; j < k; ++j) count[order[j]] += 1;
  }
  for (int64_t e = 0; e < E; ++e) expected += (double(E) / (k * T)) * count[e] * mean_score[e];
  expected *= 0.01;
  EXPECT_NEAR(out.balance_loss.item<double>(), expected, 1e-14);
  for (int64_t e = 0; e < E; ++e) {
    EXPECT_DOUBLE_EQ(out.stats.load[e].item<double>(), count[e] / (k * T)) << "expert " << e;
  }
}

TEST(Moe, PerfectlyBalancedRoutingGivesTheMinimumAlpha) {
  // Uniform scores and counts: f_i = 1, P_i = 1/N, so the loss is alpha.
  const auto scores = torch::full({8, 4}, 0.25, torch::kFloat64);
  const auto counts = torch::full({4}, 4, torch::kInt64);  // 8 tokens * top-2 / 4
  EXPECT_NEAR(expert_balance_loss(scores, counts, 2, 0.003).item<double>(), 0.003, 1e-15);
}

TEST_P(MoeDispatchTest, CapacityDropsExactlyTheOverflowInTokenOrder) {
  // Every token prefers expert 0: with capacity ceil(cf * T * k / N), the
  // first `capacity` tokens go through it and the rest keep only the residual
  // (and the shared expert).
  const int64_t T = 10;
  const auto& param = GetParam();
  const auto dispatch = "moe.dispatch=" + param.dispatch;
  const auto config = moe_config(1, 4, 1, {"moe.capacity_factor=1.2", dispatch});
  torch::manual_seed(33);
  Moe moe(config);
  moe->to(param.dtype);
  {
    torch::NoGradGuard no_grad;
    moe->router()->weight.zero_();
    moe->router()->weight[0].fill_(1.0);
  }
  auto x = torch::rand({1, T, config.d_model}, param.dtype) + 0.1;  // positive: expert 0 wins
  const auto out = moe(x);
  const int64_t capacity = static_cast<int64_t>(std::ceil(1.2 * T * 1 / 4.0));
  EXPECT_EQ(out.stats.capacity, capacity);
  EXPECT_EQ(out.stats.dropped.item<int64_t>(), T - capacity);
  EXPECT_DOUBLE_EQ(out.stats.load[0].item<double>(), 1.0);  // load counts before dropping

  Moe dropless(moe_config(1, 4, 1, {dispatch}));
  dropless->to(param.dtype);
  {
    torch::NoGradGuard no_grad;
    auto from = moe->named_parameters();
    for (auto& item : dropless->named_parameters()) item.value().copy_(from[item.key()]);
  }
  const auto full = dropless(x).output;
  // Top-1, so the renormalized gate is 1.
  const auto shared_only = full - expert_reference(moe, 0, x.view({T, -1})).view(x.sizes());
  EXPECT_TENSOR_NEAR(out.output.narrow(1, 0, capacity), full.narrow(1, 0, capacity), param.tolerance);
  EXPECT_TENSOR_NEAR(out.output.narrow(1, capacity, T - capacity),
                     shared_only.narrow(1, capacity, T - capacity), param.tolerance);
}

TEST(Moe, DroplessDropsNothing) {
  const auto config = moe_config(0, 4, 2);
  torch::manual_seed(34);
  Moe moe(config);
  const auto out = moe(torch::randn({4, 8, config.d_model}));
  EXPECT_EQ(out.stats.dropped.item<int64_t>(), 0);
  EXPECT_EQ(out.stats.capacity, 0);
  EXPECT_EQ(out.stats.assignments, 4 * 8 * 2);
  EXPECT_NEAR(out.stats.load.sum().item<double>(), 1.0, 1e-12);
}

TEST(Moe, RoutingDescriptionShowsLoadExtremesAndDrops) {
  MoeStats stats;
  stats.load = torch::tensor({0.5, 0.25, 0.25, 0.0}, torch::kFloat64);
  stats.assignments = 40;
  stats.dropped = torch::tensor(int64_t{3});
  EXPECT_EQ(describe_routing({stats}, {2}),
            "moe h.2: load max 0.500 min 0.000 (balanced 0.250), dropped 3 of 40\n");
  MoeStats dropless;
  dropless.load = stats.load;
  dropless.assignments = 40;
  EXPECT_EQ(describe_routing({dropless}, {2}),
            "moe h.2: load max 0.500 min 0.000 (balanced 0.250), dropped 0 of 40\n");
}

}  // namespace
}  // namespace muonlab::models
