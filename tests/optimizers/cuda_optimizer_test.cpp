// The Muon family on CUDA computes what it computes on the CPU. Newton-Schulz
// in bf16 (CUDA's default) and fp32 is held against float64 NS on the CPU;
// a few steps of Muon, Muon2, Muon2-F and Group Muon (random grouping, which
// draws its permutations on the CPU) against the same steps in float64 on
// the CPU. A wrong orientation, coefficient or state layout on the GPU path
// gives errors of order one; the tolerances allow only rounding. Skipped
// where no GPU is visible.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "muonlab/core/native_bf16.h"
#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/muon.h"
#include "muonlab/optimizers/newton_schulz.h"
#include "attention_params.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using testing::attention_params;
using testing::random_matrix;

double relative_error(const torch::Tensor& value, const torch::Tensor& reference) {
  const auto ref = reference.to(torch::kCPU, torch::kFloat64);
  return (value.to(torch::kCPU, torch::kFloat64) - ref).norm().item<double>() / ref.norm().item<double>();
}

NewtonSchulzConfig ns_config(NsDtype dtype, int64_t steps = 5) {
  NewtonSchulzConfig config;
  config.steps = steps;
  config.dtype = dtype;
  return config;
}

// Needs no GPU: resolving a dtype for a device touches no device.
TEST(NewtonSchulzOnCuda, AutoPrecisionIsBf16OnCudaAndFollowsTheCpusInstructions) {
  EXPECT_EQ(resolve_ns_dtype(NsDtype::kAuto, torch::Device(torch::kCUDA)), torch::kBFloat16);
  EXPECT_EQ(resolve_ns_dtype(NsDtype::kAuto, torch::Device(torch::kCPU)),
            cpu_bf16_instructions().empty() ? torch::kFloat32 : torch::kBFloat16);
}

// The Gram form on the GPU (wide, tall and batched, restarted every 2 steps)
// against the standard form in float64 on the CPU.
TEST(NewtonSchulzOnCuda, GramFormMatchesCpuFloat64InBf16AndFp32) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  const std::vector<torch::Tensor> inputs = {
      random_matrix(192, 768, 6), random_matrix(768, 192, 7),
      torch::stack({random_matrix(64, 256, 8), random_matrix(64, 256, 9)})};
  for (const auto& M : inputs) {
    const auto reference = newton_schulz(M, ns_config(NsDtype::kFloat64));
    for (const auto& [dtype, tolerance] : {std::pair{NsDtype::kFloat32, 2e-3}, std::pair{NsDtype::kBFloat16, 5e-2}}) {
      auto gram = ns_config(dtype);
      gram.method = NsMethod::kGram;
      ASSERT_TRUE(uses_gram_form(M.size(-2), M.size(-1), gram));
      const auto out = newton_schulz(M.to(torch::kCUDA, torch::kFloat32), gram);
      EXPECT_TRUE(out.is_cuda());
      EXPECT_LT(relative_error(out, reference), tolerance) << to_string(dtype) << " on " << M.sizes();
    }
  }
}

// Wide, tall and batched inputs; the result keeps the input's device, dtype
// and shape whatever precision the matmuls ran in.
TEST(NewtonSchulzOnCuda, MatchesCpuFloat64InBf16AndFp32) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  const std::vector<torch::Tensor> inputs = {
      random_matrix(192, 768, 1), random_matrix(512, 128, 2),
      torch::stack({random_matrix(64, 256, 3), random_matrix(64, 256, 4), random_matrix(64, 256, 5)})};
  for (const auto& M : inputs) {
    const auto reference = newton_schulz(M, ns_config(NsDtype::kFloat64));
    const auto on_gpu = M.to(torch::kCUDA, torch::kFloat32);
    for (const auto& [dtype, tolerance] : {std::pair{NsDtype::kFloat32, 2e-3}, std::pair{NsDtype::kBFloat16, 5e-2}}) {
      const auto out = newton_schulz(on_gpu, ns_config(dtype));
      EXPECT_TRUE(out.is_cuda());
      EXPECT_EQ(out.scalar_type(), torch::kFloat32);
      EXPECT_EQ(out.sizes(), M.sizes());
      EXPECT_LT(relative_error(out, reference), tolerance) << to_string(dtype) << " on " << M.sizes();
    }
  }
}

// Three steps with the same gradients on both devices; returns the weights.
std::vector<torch::Tensor> three_steps(std::vector<TaggedParam> params, const MuonOptions& options) {
  Muon muon(params, options);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& p = params[i].tensor;
      p.mutable_grad() = random_matrix(p.size(0), p.size(1), 100 * step + i).to(p.device(), p.scalar_type());
    }
    muon.step();
  }
  std::vector<torch::Tensor> weights;
  for (auto& p : params) weights.push_back(p.tensor.detach());
  return weights;
}

struct Variant {
  std::string name;
  MuonOptions options;
};

class MuonOnCuda : public ::testing::TestWithParam<Variant> {};

TEST_P(MuonOnCuda, ThreeStepsMatchCpuFloat64) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  const auto& options = GetParam().options;
  const auto initial = attention_params(torch::kCPU, torch::kFloat64);
  const auto on_cpu = three_steps(attention_params(torch::kCPU, torch::kFloat64),
                                  MuonOptions(options).ns_dtype(NsDtype::kFloat64));
  const auto on_gpu = three_steps(attention_params(torch::kCUDA, torch::kFloat32),
                                  MuonOptions(options).ns_dtype(NsDtype::kFloat32));
  for (size_t i = 0; i < on_cpu.size(); ++i) {
    EXPECT_TRUE(on_gpu[i].is_cuda());
    // Compared on the change, not the weights, which would hide a wrong update.
    const auto change = on_cpu[i] - initial[i].tensor.detach();
    EXPECT_LT(relative_error(on_gpu[i].cpu().to(torch::kFloat64) - initial[i].tensor.detach(), change), 2e-3)
        << GetParam().name << ", " << initial[i].name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Family, MuonOnCuda,
    ::testing::Values(
        Variant{"muon", MuonOptions(0.02)},
        Variant{"muon2", MuonOptions(0.02).second_moment(SecondMomentKind::kFull).ns_steps(3)},
        Variant{"muon2f", MuonOptions(0.02).second_moment(SecondMomentKind::kFactored).ns_steps(3)},
        Variant{"group_random", MuonOptions(0.02).group_size(2).grouping_rule(GroupingRule::kRandom).grouping_seed(7)},
        Variant{"group_strided_muon2f", MuonOptions(0.02)
                                            .group_size(2)
                                            .grouping_rule(GroupingRule::kStrided)
                                            .second_moment(SecondMomentKind::kFactored)
                                            .ns_steps(3)}),
    [](const auto& info) { return info.param.name; });

// AdamW on CUDA takes PyTorch's fused kernel (LibTorch 2.x) or the
// multi-tensor ops: either must agree with the per-parameter step in float64
// on the CPU, over steps where the parameters' step counts differ.
TEST(AdamWOnCuda, MultiTensorStepMatchesCpuFloat64) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  const std::vector<torch::Tensor> initial = {random_matrix(96, 64, 1), random_matrix(64, 64, 2),
                                              random_matrix(1, 64, 3).squeeze(0)};
  std::vector<torch::Tensor> params, reference, exp_avgs, exp_avg_sqs;
  std::vector<int64_t> steps(initial.size(), 0);
  for (const auto& t : initial) {
    params.push_back(t.to(torch::kCUDA, torch::kFloat32).set_requires_grad(true));
    reference.push_back(t.clone());
    exp_avgs.push_back(torch::zeros_like(t));
    exp_avg_sqs.push_back(torch::zeros_like(t));
  }
  const auto options = AdamWOptions(1e-2).weight_decay(0.1);
  AdamW adamw(params, options);
  for (int step = 1; step <= 4; ++step) {
    for (size_t i = 0; i < params.size(); ++i) {
      const bool skipped = (i == 0 && step == 2);
      const auto grad = torch::randn_like(initial[i]);
      params[i].mutable_grad() = skipped ? torch::Tensor() : grad.to(torch::kCUDA, torch::kFloat32);
      if (!skipped) adamw_step(reference[i], grad, exp_avgs[i], exp_avg_sqs[i], ++steps[i], options);
    }
    adamw.step();
  }
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_LT(relative_error(params[i].detach() - initial[i].to(torch::kCUDA, torch::kFloat32),
                             reference[i] - initial[i]),
              1e-4)
        << "parameter " << i;
  }
}

}  // namespace
}  // namespace muonlab::optim
