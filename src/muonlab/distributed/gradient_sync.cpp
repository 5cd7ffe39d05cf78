#include "muonlab/distributed/gradient_sync.h"

#include "muonlab/distributed/collective_group.h"

namespace muonlab::distributed {

namespace {

// Consecutive parameters of one dtype and device, up to bucket_bytes.
std::vector<std::vector<torch::Tensor>> buckets_of(const std::vector<torch::Tensor>& grads, int64_t bucket_bytes) {
  std::vector<std::vector<torch::Tensor>> buckets;
  int64_t bytes = 0;
  for (const auto& grad : grads) {
    const int64_t size = grad.numel() * static_cast<int64_t>(grad.element_size());
    const bool fits = !buckets.empty() && bytes + size <= bucket_bytes &&
                      buckets.back().front().scalar_type() == grad.scalar_type() &&
                      buckets.back().front().device() == grad.device();
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(grad);
    bytes += size;
  }
  return buckets;
}

}  // namespace

void average_gradients(const std::vector<torch::Tensor>& params, compat::CollectiveGroup& group,
                       int64_t bucket_bytes) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  const double world = static_cast<double>(group.getSize());
  for (const auto& bucket : buckets_of(grads, bucket_bytes)) {
    std::vector<torch::Tensor> flat = {torch::cat([&] {
      std::vector<torch::Tensor> views;
      for (const auto& g : bucket) views.push_back(g.reshape({-1}));
      return views;
    }())};
    group.allreduce(flat)->wait();
    flat[0].div_(world);
    int64_t offset = 0;
    for (const auto& g : bucket) {
      g.copy_(flat[0].narrow(0, offset, g.numel()).view_as(g));
      offset += g.numel();
    }
  }
}

}  // namespace muonlab::distributed
