// Every model family computes on CUDA what it computes on the CPU: logits
// and gradients in fp32 (GPT-2, LLaMA, MLA + MoE, with PyTorch's fused
// attention kernels on the GPU), logits under bf16 autocast, and greedy
// generation with and without the KV cache. Skipped where no GPU is visible.
#include <gtest/gtest.h>

#include <string>

#include "models/model_test_util.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/models/generate.h"
#include "muonlab/models/transformer.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

double relative_error(const torch::Tensor& value, const torch::Tensor& reference) {
  const auto ref = reference.to(torch::kCPU, torch::kFloat64);
  return (value.to(torch::kCPU, torch::kFloat64) - ref).norm().item<double>() / ref.norm().item<double>();
}

// The same initial weights on both devices: drawn on the CPU from one seed.
// The configs may differ in how they compute (moe.dispatch), not in shape.
std::pair<Transformer, Transformer> cpu_and_cuda_models(const ModelConfig& cpu_config,
                                                        const ModelConfig& cuda_config) {
  torch::manual_seed(11);
  Transformer cpu(cpu_config);
  torch::manual_seed(11);
  Transformer cuda(cuda_config);
  cuda->to(torch::kCUDA);
  return {cpu, cuda};
}

std::pair<Transformer, Transformer> cpu_and_cuda_models(const ModelConfig& config) {
  return cpu_and_cuda_models(config, config);
}

// fp32 forward and backward of `tokens` on both: logits within 1e-4 and
// every gradient within 1e-3 of the CPU's, relative. Returns the CPU logits.
torch::Tensor expect_cuda_follows_cpu(Transformer& cpu, Transformer& cuda, const torch::Tensor& tokens) {
  const auto cpu_out = cpu->forward(tokens);
  const auto cuda_out = cuda->forward(tokens.cuda());
  EXPECT_LT(relative_error(cuda_out.logits, cpu_out.logits), 1e-4);
  training_loss(cpu_out, tokens).backward();
  training_loss(cuda_out, tokens.cuda()).backward();

  auto cuda_params = cuda->named_parameters();
  for (const auto& item : cpu->named_parameters()) {
    const auto& grad = cuda_params[item.key()].grad();
    EXPECT_TRUE(grad.defined() && grad.is_cuda()) << item.key();
    // Router weights of unchosen experts may get no gradient on either side.
    if (!grad.defined() || item.value().grad().abs().sum().item<double>() == 0) continue;
    EXPECT_LT(relative_error(grad, item.value().grad()), 1e-3) << item.key();
  }
  return cpu_out.logits.detach();
}

class ModelOnCuda : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelOnCuda, LogitsAndGradientsMatchCpu) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  const auto config = testing::tiny_config(GetParam());
  auto [cpu, cuda] = cpu_and_cuda_models(config);
  torch::manual_seed(5);
  const auto tokens = torch::randint(0, config.vocab_size, {3, config.block_size}, torch::kLong);
  expect_cuda_follows_cpu(cpu, cuda, tokens);
}

TEST_P(ModelOnCuda, Bf16AutocastLogitsStayCloseToFp32) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  const auto config = testing::tiny_config(GetParam());
  auto [cpu, cuda] = cpu_and_cuda_models(config);
  torch::manual_seed(6);
  const auto tokens = torch::randint(0, config.vocab_size, {2, config.block_size}, torch::kLong);
  torch::NoGradGuard no_grad;
  const auto reference = cpu->forward(tokens).logits;
  compat::Autocast autocast(torch::kCUDA, true, torch::kBFloat16);
  const auto logits = cuda->forward(tokens.cuda()).logits;
  EXPECT_LT(relative_error(logits, reference), 3e-2);
}

TEST_P(ModelOnCuda, GreedyGenerationMatchesCpuWithAndWithoutCache) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  const auto config = testing::tiny_config(GetParam());
  auto [cpu, cuda] = cpu_and_cuda_models(config);
  SamplingOptions greedy;
  greedy.max_new_tokens = 12;
  greedy.temperature = 0;
  const std::vector<int64_t> prompt = {1, 2, 3, 4};
  const auto expected = generate(cpu, prompt, greedy);
  EXPECT_EQ(generate(cuda, prompt, greedy), expected);
  greedy.use_cache = false;
  EXPECT_EQ(generate(cuda, prompt, greedy), expected);
}

// The MoE layer's grouped GEMMs on the GPU (the Hopper bf16 kernel under
// autocast, whatever CUDA offers in fp32) against the per-expert loop on
// the CPU, from the same weights.
TEST(MoeOnCuda, GroupedExpertsMatchTheCpuLoop) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  if (!compat::kHasGroupedMm) GTEST_SKIP() << "grouped GEMM needs LibTorch 2.9 or later";
  // Dropless, and under a capacity: the loop removes the assignments over
  // it, grouped keeps them with a zero gate.
  for (const std::string capacity : {"moe.capacity_factor=0", "moe.capacity_factor=1.0"}) {
    SCOPED_TRACE(capacity);
    const auto cpu_config = testing::tiny_config("tiny-mla-moe", {"moe.dispatch=looped", capacity});
    auto [cpu, cuda] = cpu_and_cuda_models(
        cpu_config, testing::tiny_config("tiny-mla-moe", {"moe.dispatch=grouped", capacity}));
    torch::manual_seed(7);
    const auto tokens = torch::randint(0, cpu_config.vocab_size, {3, cpu_config.block_size}, torch::kLong);
    const auto cpu_logits = expect_cuda_follows_cpu(cpu, cuda, tokens);

    torch::NoGradGuard no_grad;
    compat::Autocast autocast(torch::kCUDA, true, torch::kBFloat16);
    EXPECT_LT(relative_error(cuda->forward(tokens.cuda()).logits, cpu_logits), 3e-2);
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, ModelOnCuda, ::testing::Values("tiny-gpt2", "tiny-llama", "tiny-mla-moe"),
                         testing::preset_test_name);

}  // namespace
}  // namespace muonlab::models
