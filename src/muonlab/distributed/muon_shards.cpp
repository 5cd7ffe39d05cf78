#include "muonlab/distributed/muon_shards.h"

#include <algorithm>
#include <numeric>

#include "muonlab/core/errors.h"

namespace muonlab::distributed {

int64_t MuonShardPlan::padding() const {
  return world_size * segment - std::accumulate(share.begin(), share.end(), int64_t{0});
}

MuonShardPlan plan_muon_shards(const std::vector<torch::Tensor>& params, int64_t world_size) {
  if (world_size < 1) fail("distributed Muon: world size {}: expected 1 or more ranks", world_size);
  MuonShardPlan plan;
  plan.world_size = world_size;
  plan.params = params;
  plan.owner.assign(params.size(), 0);
  plan.offset.assign(params.size(), 0);
  plan.share.assign(static_cast<size_t>(world_size), 0);
  std::vector<size_t> largest_first(params.size());
  std::iota(largest_first.begin(), largest_first.end(), size_t{0});
  std::stable_sort(largest_first.begin(), largest_first.end(),
                   [&](size_t a, size_t b) { return params[a].numel() > params[b].numel(); });
  for (const size_t i : largest_first) {
    const auto least_loaded = std::min_element(plan.share.begin(), plan.share.end()) - plan.share.begin();
    plan.owner[i] = least_loaded;
    plan.share[static_cast<size_t>(least_loaded)] += params[i].numel();
  }
  // Offsets in the optimizer's order within each segment.
  std::vector<int64_t> filled(static_cast<size_t>(world_size), 0);
  for (size_t i = 0; i < params.size(); ++i) {
    auto& next = filled[static_cast<size_t>(plan.owner[i])];
    plan.offset[i] = next;
    next += params[i].numel();
  }
  plan.segment = *std::max_element(plan.share.begin(), plan.share.end());
  return plan;
}

torch::Tensor pack_segments(const MuonShardPlan& plan, const std::function<torch::Tensor(size_t)>& value) {
  if (plan.params.empty()) return torch::zeros({0});
  torch::Tensor buffer = torch::zeros({plan.world_size * plan.segment}, plan.params.front().options());
  for (size_t i = 0; i < plan.params.size(); ++i) slice_of(plan, buffer, i).copy_(value(i));
  return buffer;
}

torch::Tensor pack_segment(const MuonShardPlan& plan, int64_t rank, const std::function<torch::Tensor(size_t)>& value) {
  if (plan.params.empty()) return torch::zeros({0});
  torch::Tensor buffer = torch::zeros({plan.segment}, plan.params.front().options());
  for (size_t i = 0; i < plan.params.size(); ++i) {
    if (!plan.owns(rank, i)) continue;
    buffer.narrow(0, plan.offset[i], plan.params[i].numel()).copy_(value(i).reshape({-1}));
  }
  return buffer;
}

torch::Tensor slice_of(const MuonShardPlan& plan, const torch::Tensor& segments, size_t index) {
  const auto& param = plan.params[index];
  return segments.narrow(0, plan.owner[index] * plan.segment + plan.offset[index], param.numel()).view(param.sizes());
}

}  // namespace muonlab::distributed
