#include "muonlab/distributed/overlapped_allreduce.h"

#include "muonlab/distributed/collective_group.h"

namespace muonlab::distributed {

OverlappedAllReduce::OverlappedAllReduce(c10::intrusive_ptr<compat::CollectiveGroup> group,
                                         std::vector<torch::Tensor> params, int64_t bucket_bytes)
    : group_(std::move(group)), params_(std::move(params)) {
  place_.resize(params_.size());
  filled_.assign(params_.size(), false);
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {  // reverse: backward's order
    const auto& p = params_[k];
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fits = !buckets_.empty() && bytes + size <= bucket_bytes &&
                      params_[buckets_.back().members.front()].scalar_type() == p.scalar_type();
    if (!fits) {
      buckets_.emplace_back();
      bytes = 0;
    }
    Bucket& bucket = buckets_.back();
    place_[k] = {buckets_.size() - 1, bucket.members.size()};
    bucket.offsets.push_back(bucket.members.empty() ? 0 : bucket.offsets.back() + params_[bucket.members.back()].numel());
    bucket.members.push_back(k);
    bytes += size;
  }
  for (auto& bucket : buckets_) {
    const int64_t numel = bucket.offsets.back() + params_[bucket.members.back()].numel();
    bucket.buffer = torch::zeros({numel}, params_[bucket.members.front()].options());
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    hooks_.push_back(params_[k].register_hook([this, k](const torch::Tensor& grad) { on_gradient(k, grad); }));
  }
}

OverlappedAllReduce::~OverlappedAllReduce() {
  for (size_t k = 0; k < params_.size(); ++k) params_[k].remove_hook(hooks_[k]);
}

void OverlappedAllReduce::arm() {
  armed_ = true;
  next_to_start_ = 0;
  filled_.assign(params_.size(), false);
  for (auto& bucket : buckets_) {
    bucket.ready = 0;
    bucket.wait = nullptr;
  }
}

void OverlappedAllReduce::on_gradient(size_t param, const torch::Tensor& grad) {
  if (!armed_ || filled_[param]) return;
  torch::NoGradGuard no_grad;
  // The gradient this step ends with: earlier micro-steps' plus this one's.
  const auto& accumulated = params_[param].grad();
  const auto [b, member] = place_[param];
  Bucket& bucket = buckets_[b];
  auto slot = bucket.buffer.narrow(0, bucket.offsets[member], params_[param].numel()).view_as(grad);
  if (accumulated.defined()) {
    torch::add_out(slot, accumulated, grad);
  } else {
    slot.copy_(grad);
  }
  filled_[param] = true;
  ++bucket.ready;
  start_ready_buckets_in_order();
}

void OverlappedAllReduce::start(Bucket& bucket) {
  std::vector<torch::Tensor> tensors = {bucket.buffer};
  auto work = group_->allreduce(tensors);
  bucket.wait = [work] { work->wait(); };
}

void OverlappedAllReduce::start_ready_buckets_in_order() {
  while (next_to_start_ < buckets_.size() &&
         buckets_[next_to_start_].ready == static_cast<int64_t>(buckets_[next_to_start_].members.size())) {
    start(buckets_[next_to_start_++]);
  }
}

void OverlappedAllReduce::finish() {
  torch::NoGradGuard no_grad;
  armed_ = false;
  // Parameters without a gradient this step take part as their accumulated
  // gradient, or zeros, as in average_gradients.
  for (size_t k = 0; k < params_.size(); ++k) {
    if (filled_[k]) continue;
    const auto [b, member] = place_[k];
    auto slot = buckets_[b].buffer.narrow(0, buckets_[b].offsets[member], params_[k].numel());
    if (params_[k].grad().defined()) {
      slot.copy_(params_[k].grad().reshape({-1}));
    } else {
      slot.zero_();
    }
  }
  for (; next_to_start_ < buckets_.size(); ++next_to_start_) start(buckets_[next_to_start_]);
  const double world = static_cast<double>(group_->getSize());
  for (auto& bucket : buckets_) {
    bucket.wait();
    bucket.buffer.div_(world);
    for (size_t m = 0; m < bucket.members.size(); ++m) {
      auto& p = params_[bucket.members[m]];
      const auto mean = bucket.buffer.narrow(0, bucket.offsets[m], p.numel()).view_as(p);
      if (p.grad().defined()) {
        p.mutable_grad().copy_(mean);
      } else {
        p.mutable_grad() = mean.clone();
      }
    }
  }
}

}  // namespace muonlab::distributed
