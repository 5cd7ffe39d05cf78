// Helpers for the model tests: tiny float64 configs and a gradient check
// against central finite differences.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "muonlab/models/model_config.h"

namespace muonlab::testing {

// A tiny config of the given preset with `overrides` ("key=value") applied.
inline models::ModelConfig tiny_config(const std::string& preset,
                                       const std::vector<std::string>& overrides = {}) {
  auto config = models::model_preset(preset);
  for (const auto& o : overrides) models::apply_override(config, o);
  config.validate();
  return config;
}

// A test name for a preset parameter ("tiny-gpt2" -> "tiny_gpt2"): GoogleTest
// names allow no '-'.
inline std::string preset_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (auto& c : name) c = c == '-' ? '_' : c;
  return name;
}

struct NamedTensor {
  std::string name;
  torch::Tensor tensor;
};

// For every tensor (float64, requires_grad), compares the autograd gradient
// of loss() with central differences (f(x + h) - f(x - h)) / 2h at up to
// `entries` seeded positions per tensor.
inline void expect_gradients_match_finite_differences(const std::function<torch::Tensor()>& loss,
                                                      const std::vector<NamedTensor>& tensors,
                                                      int entries = 8, double step = 1e-6,
                                                      double tolerance = 1e-6) {
  for (const auto& t : tensors) {
    ASSERT_EQ(t.tensor.scalar_type(), torch::kFloat64) << t.name;
    if (t.tensor.grad().defined()) t.tensor.mutable_grad().zero_();
  }
  loss().backward();
  torch::NoGradGuard no_grad;
  torch::manual_seed(1234);
  for (const auto& t : tensors) {
    ASSERT_TRUE(t.tensor.grad().defined()) << t.name << " got no gradient";
    const auto flat = t.tensor.view({-1});
    const auto grad = t.tensor.grad().view({-1});
    const int64_t n = flat.numel();
    const auto picks = torch::randperm(n).narrow(0, 0, std::min<int64_t>(entries, n));
    double largest_error = 0;
    for (int64_t k = 0; k < picks.size(0); ++k) {
      const int64_t i = picks[k].item<int64_t>();
      const double original = flat[i].item<double>();
      flat[i] = original + step;
      const double up = loss().item<double>();
      flat[i] = original - step;
      const double down = loss().item<double>();
      flat[i] = original;
      const double numeric = (up - down) / (2 * step);
      const double analytic = grad[i].item<double>();
      const double error = std::abs(numeric - analytic) / std::max(1.0, std::abs(numeric));
      largest_error = std::max(largest_error, error);
      EXPECT_LE(error, tolerance) << t.name << "[" << i << "]: autograd " << analytic
                                  << ", finite differences " << numeric;
    }
    // A gradient that is zero everywhere would pass trivially: require signal.
    EXPECT_GT(grad.abs().max().item<double>(), 1e-8) << t.name << " has an all-zero gradient";
  }
}

// Every parameter of `module`, named, for the gradient check.
inline std::vector<NamedTensor> parameters_of(const torch::nn::Module& module) {
  std::vector<NamedTensor> out;
  for (const auto& item : module.named_parameters()) out.push_back({item.key(), item.value()});
  return out;
}

}  // namespace muonlab::testing
