#include "muonlab/models/qk_clip.h"

namespace muonlab::models {

void MaxLogitTracker::observe(const torch::Tensor& q, const torch::Tensor& k, double scale) {
  const auto per_head = head_max_logits(q, k, scale);
  max_ = max_.defined() ? torch::maximum(max_, per_head) : per_head;
}

torch::Tensor MaxLogitTracker::take(const MaxLogitCombine& combine) {
  torch::Tensor taken = max_;
  max_ = torch::Tensor();
  if (taken.defined() && combine) combine(taken);
  return taken;
}

void scale_head_rows(torch::nn::Linear& linear, int64_t first_row, int64_t head_dim, const torch::Tensor& factors) {
  scale_head_rows(linear->weight, linear->bias, first_row, head_dim, factors);
}

}  // namespace muonlab::models
