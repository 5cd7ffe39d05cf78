#include "muonlab/analysis/alignment.h"

#include "muonlab/analysis/polar_factor.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::analysis {

torch::Tensor frobenius_cosine(const torch::Tensor& P, const torch::Tensor& Q) {
  const auto P64 = P.to(torch::kFloat64);
  const auto Q64 = Q.to(torch::kFloat64);
  const auto inner = (P64 * Q64).sum({-2, -1});
  const auto norms = P64.norm(2, {-2, -1}) * Q64.norm(2, {-2, -1});
  return inner / norms;
}

torch::Tensor ns_alignment(const torch::Tensor& M, const optim::NewtonSchulzConfig& config) {
  const auto target = polar_factor(M);
  std::vector<torch::Tensor> per_step;
  optim::newton_schulz(M, config, [&](int64_t, const torch::Tensor& X) {
    per_step.push_back(frobenius_cosine(X, target));
  });
  return torch::stack(per_step);
}

std::vector<double> ns_alignment_curve(const torch::Tensor& M,
                                       const optim::NewtonSchulzConfig& config) {
  if (M.dim() != 2) {
    fail("ns_alignment_curve takes one matrix, got shape {}", shape_string(M.sizes()));
  }
  const auto curve = ns_alignment(M, config).contiguous();
  return {curve.data_ptr<double>(), curve.data_ptr<double>() + curve.numel()};
}

}  // namespace muonlab::analysis
