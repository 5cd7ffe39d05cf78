#include "muonlab/models/qk_clip.h"

#include <limits>

namespace muonlab::models {

void MaxLogitTracker::observe(const torch::Tensor& q, const torch::Tensor& k, double scale) {
  torch::NoGradGuard no_grad;
  const int64_t T = q.size(2), S = k.size(2);
  const auto logits = torch::matmul(q.to(torch::kFloat32), k.to(torch::kFloat32).transpose(-2, -1)) * scale;
  // Query t sees keys up to S - T + t (the last T of S positions).
  const auto future = torch::ones({T, S}, torch::dtype(torch::kBool).device(q.device())).triu(S - T + 1);
  const auto seen = logits.masked_fill(future, -std::numeric_limits<float>::infinity());
  const auto per_head = std::get<0>(seen.transpose(0, 1).reshape({q.size(1), -1}).max(1));
  max_ = max_.defined() ? torch::maximum(max_, per_head) : per_head;
}

torch::Tensor MaxLogitTracker::take(const MaxLogitCombine& combine) {
  torch::Tensor taken = max_;
  max_ = torch::Tensor();
  if (taken.defined() && combine) combine(taken);
  return taken;
}

torch::Tensor qk_clip_factors(const torch::Tensor& max_logits, double tau) {
  const auto maxima = max_logits.to(torch::kFloat64);
  // Only heads above tau are clipped. Not min(1, tau / S_h): a head whose
  // largest logit is negative (common early in training) would get a negative
  // factor, and its square root would turn the weights into NaN.
  return torch::where(maxima > tau, tau / maxima, torch::ones_like(maxima));
}

void scale_head_rows(torch::nn::Linear& linear, int64_t first_row, int64_t head_dim, const torch::Tensor& factors) {
  torch::NoGradGuard no_grad;
  const int64_t heads = factors.size(0);
  const auto per_row = factors.to(linear->weight.device()).repeat_interleave(head_dim);
  linear->weight.narrow(0, first_row, heads * head_dim).mul_(per_row.unsqueeze(1).to(linear->weight.scalar_type()));
  if (linear->bias.defined()) {
    linear->bias.narrow(0, first_row, heads * head_dim).mul_(per_row.to(linear->bias.scalar_type()));
  }
}

}  // namespace muonlab::models
