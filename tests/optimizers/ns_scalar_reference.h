// An independent reference for any Newton-Schulz form: NS acts on each
// singular value separately, so the singular values of NS_K(M) must be the
// scalar polynomial iteration applied to those of M, computed here with
// plain doubles from the schedule's triples.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "muonlab/analysis/polar_factor.h"
#include "muonlab/optimizers/newton_schulz.h"

namespace muonlab::testing {

// The scalar map sigma -> p_K(... p_1(sigma / (scale ||M||_F + eps))) in
// doubles, sorted ascending.
inline std::vector<double> scalar_ns_iteration(const torch::Tensor& M, const optim::NewtonSchulzConfig& config) {
  const auto s = analysis::singular_values(M).contiguous();
  const double frob = M.to(torch::kFloat64).norm().item<double>();
  std::vector<double> out;
  for (int64_t i = 0; i < s.numel(); ++i) {
    double x = s[i].item<double>() / (config.schedule.norm_scale * frob + config.schedule.eps);
    for (int64_t k = 0; k < config.steps; ++k) {
      const auto& t = config.schedule.step(k);
      x = t.a * x + t.b * x * x * x + t.c * x * x * x * x * x;
    }
    out.push_back(x);
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::vector<double> sorted_singular_values(const torch::Tensor& M) {
  const auto s = analysis::singular_values(M).contiguous();
  std::vector<double> out(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
  std::sort(out.begin(), out.end());
  return out;
}

inline void expect_matches_scalar_ns_iteration(const torch::Tensor& M, const optim::NewtonSchulzConfig& config,
                                               double tolerance) {
  const auto expected = scalar_ns_iteration(M, config);
  const auto actual = sorted_singular_values(optim::newton_schulz(M, config));
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], tolerance) << "singular value " << i;
  }
}

}  // namespace muonlab::testing
