// Every model family trains under bf16 autocast on the CPU (run.dtype =
// "bf16", or "auto" on CPUs with bf16 instructions): logits and gradients
// stay close to the fp32 computation of the same weights, and the weights'
// gradients stay fp32 for the optimizer.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "models/model_test_util.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/models/transformer.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

double relative_difference(const torch::Tensor& value, const torch::Tensor& reference) {
  const auto ref = reference.to(torch::kFloat64);
  return (value.to(torch::kFloat64) - ref).norm().item<double>() / ref.norm().item<double>();
}

class CpuAutocast : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuAutocast, LogitsAndGradientsStayCloseToFp32) {
  const auto config = testing::tiny_config(GetParam());
  torch::manual_seed(11);
  Transformer model(config);
  torch::manual_seed(5);
  const auto tokens = torch::randint(0, config.vocab_size, {3, config.block_size}, torch::kLong);

  const auto fp32 = model->forward(tokens);
  training_loss(fp32, tokens).backward();
  std::map<std::string, torch::Tensor> fp32_grads;
  for (const auto& item : model->named_parameters()) {
    fp32_grads[item.key()] = item.value().grad().clone();
    item.value().mutable_grad().reset();
  }

  torch::Tensor loss, logits;
  {
    compat::Autocast autocast(torch::kCPU, true, torch::kBFloat16);
    const auto out = model->forward(tokens);
    logits = out.logits;
    loss = training_loss(out, tokens);
  }
  EXPECT_EQ(logits.scalar_type(), torch::kBFloat16);  // the head's matmul ran in bf16
  EXPECT_LT(relative_difference(logits, fp32.logits), 3e-2);
  loss.backward();
  for (const auto& item : model->named_parameters()) {
    const auto& grad = item.value().grad();
    ASSERT_TRUE(grad.defined()) << item.key();
    EXPECT_EQ(grad.scalar_type(), torch::kFloat32) << item.key();
    EXPECT_TRUE(torch::isfinite(grad).all().item<bool>()) << item.key();
    // Router weights of unchosen experts may get no gradient either way.
    if (fp32_grads[item.key()].abs().sum().item<double>() == 0) continue;
    EXPECT_LT(relative_difference(grad, fp32_grads[item.key()]), 0.1) << item.key();
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, CpuAutocast, ::testing::Values("tiny-gpt2", "tiny-llama", "tiny-mla-moe"),
                         testing::preset_test_name);

}  // namespace
}  // namespace muonlab::models
