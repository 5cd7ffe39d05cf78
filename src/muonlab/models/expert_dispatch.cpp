#include "muonlab/models/expert_dispatch.h"

#include "muonlab/models/routed_experts.h"

namespace muonlab::models {

ExpertAssignments sort_assignments(const torch::Tensor& chosen, const torch::Tensor& gates,
                                   int64_t num_experts, int64_t capacity, bool counts_on_host) {
  const int64_t n_tokens = chosen.size(0);
  const int64_t top_k = chosen.size(1);
  const auto flat_expert = chosen.reshape({-1});
  // Entries t*k .. t*k + k-1 are token t's choices. (Not repeat_interleave,
  // which on CUDA reads its output size on the host.)
  const auto flat_token = torch::arange(n_tokens, chosen.options())
                              .unsqueeze(1)
                              .expand({n_tokens, top_k})
                              .reshape({-1});
  // A stable sort keeps token order inside each expert's group.
  auto order = std::get<1>(torch::sort(flat_expert, /*stable=*/true, 0, false));

  ExpertAssignments a;
  // A scatter-add, not bincount, which on CUDA reads the largest id on the host.
  a.routed_counts = torch::zeros({num_experts}, chosen.options())
                        .scatter_add_(0, flat_expert, torch::ones_like(flat_expert));
  a.experts = flat_expert.index_select(0, order);
  const auto starts = a.routed_counts.cumsum(0) - a.routed_counts;
  a.slots = torch::arange(order.size(0), order.options()) - starts.index_select(0, a.experts);
  a.group_sizes = a.routed_counts;
  a.dropped = torch::zeros({}, a.routed_counts.options());
  auto sorted_gates = gates.reshape({-1}).index_select(0, order);
  if (capacity > 0) {
    const auto within = a.slots < capacity;
    a.dropped = (a.routed_counts - capacity).clamp_min(0).sum();
    if (counts_on_host) {
      const auto kept = within.nonzero().squeeze(1);
      order = order.index_select(0, kept);
      a.experts = a.experts.index_select(0, kept);
      a.slots = a.slots.index_select(0, kept);
      sorted_gates = sorted_gates.index_select(0, kept);
      a.group_sizes = a.routed_counts.clamp_max(capacity);
    } else {
      sorted_gates = sorted_gates * within.to(sorted_gates.scalar_type());
    }
  }
  a.token_ids = flat_token.index_select(0, order);
  a.gates = sorted_gates;

  if (counts_on_host) {
    const auto host = a.group_sizes.to(torch::kCPU);
    a.counts.assign(host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + num_experts);
  }
  return a;
}

MoeDispatch resolve_dispatch(MoeDispatch requested, const torch::Device& device) {
  if (requested != MoeDispatch::kAuto) return requested;
  return device.is_cuda() ? MoeDispatch::kBatched : MoeDispatch::kLooped;
}

torch::Tensor add_routed_experts(const torch::Tensor& base, const torch::Tensor& tokens,
                                 RoutedExpertsImpl& experts, const ExpertAssignments& a,
                                 MoeDispatch resolved_dispatch) {
  if (a.token_ids.numel() == 0) return base;
  const auto sorted = tokens.index_select(0, a.token_ids);
  const auto outputs = experts.forward(sorted, a, resolved_dispatch);
  // The gate in the tokens' dtype, as the dense path weighs it; under
  // autocast the experts' outputs may be narrower than the sum they join.
  const auto weighted = outputs * a.gates.unsqueeze(1).to(tokens.scalar_type());
  return base.index_add(0, a.token_ids, weighted.to(base.scalar_type()));
}

}  // namespace muonlab::models
