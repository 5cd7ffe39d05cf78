// The one-pass CPU AdamW step against LibTorch's op-by-op form and the
// formula in float64.
#include "muonlab/optimizers/fused_adamw_cpu.h"

#include "muonlab/optimizers/adamw.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

struct AdamWTensors {
  torch::Tensor param, exp_avg, exp_avg_sq;
};

// Three steps of `options` from `initial` with `grads`, by `step_fn`.
template <typename StepFn>
AdamWTensors three_adamw_steps(const torch::Tensor& initial, const std::vector<torch::Tensor>& grads,
                               StepFn step_fn) {
  AdamWTensors t{initial.clone(), torch::zeros_like(initial), torch::zeros_like(initial)};
  for (int64_t step = 1; step <= 3; ++step) step_fn(t, grads[static_cast<size_t>(step - 1)], step);
  return t;
}

TEST(FusedAdamWCpu, MatchesTheOpByOpStepAndTheFloat64Formula) {
  torch::manual_seed(21);
  const auto initial = torch::randn({100003});  // several tasks' worth
  std::vector<torch::Tensor> grads;
  for (int i = 0; i < 3; ++i) grads.push_back(torch::randn({100003}) * (i + 1));
  const auto options = AdamWOptions(1e-2).weight_decay(0.1).eps(1e-8);
  const auto [beta1, beta2] = options.betas();

  const auto fused = three_adamw_steps(initial, grads, [&](AdamWTensors& t, const torch::Tensor& g, int64_t step) {
    ASSERT_TRUE(fused_adamw_cpu_applies(t.param, g, t.exp_avg, t.exp_avg_sq));
    adamw_step(t.param, g, t.exp_avg, t.exp_avg_sq, step, options);
  });
  // LibTorch's ops, in fp32 and in float64.
  const auto by_ops = [&](AdamWTensors& t, const torch::Tensor& g, int64_t step) {
    const double c1 = 1 - std::pow(beta1, step), c2 = 1 - std::pow(beta2, step);
    t.param.mul_(1 - 1e-2 * 0.1);
    t.exp_avg.mul_(beta1).add_(g, 1 - beta1);
    t.exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2);
    t.param.addcdiv_(t.exp_avg, t.exp_avg_sq.sqrt() / std::sqrt(c2) + 1e-8, -1e-2 / c1);
  };
  const auto ops = three_adamw_steps(initial, grads, by_ops);
  std::vector<torch::Tensor> wide_grads;
  for (const auto& g : grads) wide_grads.push_back(g.to(torch::kFloat64));
  const auto wide = three_adamw_steps(initial.to(torch::kFloat64), wide_grads,
                                      [&](AdamWTensors& t, const torch::Tensor& g, int64_t step) { by_ops(t, g, step); });

  EXPECT_TENSOR_NEAR(fused.param.to(torch::kFloat64), wide.param, 1e-6);
  EXPECT_TENSOR_NEAR(fused.exp_avg.to(torch::kFloat64), wide.exp_avg, 1e-6);
  EXPECT_TENSOR_NEAR(fused.exp_avg_sq.to(torch::kFloat64), wide.exp_avg_sq, 1e-5);
  // Against the fp32 ops: the same roundings but for a multiply-add that
  // LibTorch's vectorized add may fuse, so a few ulps at most.
  EXPECT_TENSOR_NEAR(fused.param, ops.param, 1e-6);
  EXPECT_TENSOR_NEAR(fused.exp_avg, ops.exp_avg, 1e-6);
  EXPECT_TENSOR_NEAR(fused.exp_avg_sq, ops.exp_avg_sq, 1e-5);
  EXPECT_GT((fused.param - initial).abs().max().item<double>(), 0.02);  // it did step
}

TEST(FusedAdamWCpu, TakenOnlyForContiguousFp32CpuTensors) {
  const auto p = torch::randn({8, 12});
  const auto like = [&] { return torch::zeros_like(p); };
  EXPECT_TRUE(fused_adamw_cpu_applies(p, like(), like(), like()));
  EXPECT_FALSE(fused_adamw_cpu_applies(p.to(torch::kFloat64), like(), like(), like()));
  EXPECT_FALSE(fused_adamw_cpu_applies(p, torch::randn({12, 8}).t(), like(), like()));  // not contiguous
  EXPECT_FALSE(fused_adamw_cpu_applies(p, torch::randn({8, 11}), like(), like()));
  EXPECT_FALSE(fused_adamw_cpu_applies(p, like(), like(), torch::Tensor()));
  auto param = p.clone();
  auto m = like(), v = torch::zeros({8, 12}, torch::kFloat64);
  EXPECT_THROW(fused_adamw_cpu_step(param, like(), m, v, {1, 0.9, 0.95, 1e-3, 1, 1e-8}), c10::Error);
}

}  // namespace
}  // namespace muonlab::optim
