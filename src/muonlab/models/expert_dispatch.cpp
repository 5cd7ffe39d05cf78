#include "muonlab/models/expert_dispatch.h"

#include <algorithm>

#include "muonlab/core/torch_compat.h"

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
  a.kept_counts = a.routed_counts;
  if (capacity > 0) {
    const auto kept = (a.slots < capacity).nonzero().squeeze(1);
    a.dropped = order.size(0) - kept.size(0);
    order = order.index_select(0, kept);
    a.experts = a.experts.index_select(0, kept);
    a.slots = a.slots.index_select(0, kept);
    a.kept_counts = a.routed_counts.clamp_max(capacity);
  }
  a.token_ids = flat_token.index_select(0, order);
  a.gates = gates.reshape({-1}).index_select(0, order);

  if (counts_on_host) {
    const auto host = a.kept_counts.to(torch::kCPU);
    a.counts.assign(host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + num_experts);
  }
  return a;
}

MoeDispatch resolve_dispatch(MoeDispatch requested, const torch::Device& device) {
  if (requested != MoeDispatch::kAuto) return requested;
  return device.is_cuda() ? MoeDispatch::kBatched : MoeDispatch::kLooped;
}

namespace {

// Each expert on its own contiguous slice of the sorted tokens. split (not
// narrow) so that backward concatenates the slices' gradients once instead
// of zero-padding each to the full size.
torch::Tensor run_looped(const torch::Tensor& sorted, std::vector<Mlp>& experts,
                         const std::vector<int64_t>& counts) {
  const auto slices = sorted.split_with_sizes(counts);
  std::vector<torch::Tensor> outputs;
  for (size_t e = 0; e < experts.size(); ++e) {
    if (counts[e] > 0) outputs.push_back(experts[e](slices[e]));
  }
  return torch::cat(outputs);
}

using Projection = torch::nn::Linear& (MlpImpl::*)();

// One bmm operand from every expert's `projection`: `part` of each (its
// weight transposed, or its bias as a row) stacked along a new first
// dimension; gradients flow back to each expert's tensor.
template <typename Part>
torch::Tensor stacked(std::vector<Mlp>& experts, Projection projection, Part part) {
  std::vector<torch::Tensor> parts;
  for (auto& expert : experts) parts.push_back(part(((*expert).*projection)()));
  return torch::stack(parts);
}

// MlpImpl::forward's SwiGLU, down(silu(gate(x)) * up(x)), with every
// projection made by project(input, &MlpImpl::gate / up / down): the one
// formula the batched and grouped ways share.
template <typename Project>
torch::Tensor experts_swiglu(const torch::Tensor& x, Project project) {
  const auto hidden = torch::silu(project(x, &MlpImpl::gate)) * project(x, &MlpImpl::up);
  return project(hidden, &MlpImpl::down);
}

// x: [E, C, d] -> [E, C, d], expert e's SwiGLU on row block e.
torch::Tensor batched_swiglu(const torch::Tensor& x, std::vector<Mlp>& experts) {
  const bool bias = experts.front()->gate()->options.bias();
  const auto project = [&](const torch::Tensor& in, Projection p) {
    // [E, C, in] x [E, in, out], plus [E, 1, out].
    auto out = torch::bmm(in, stacked(experts, p, [](auto& linear) { return linear->weight.t(); }));
    return bias ? out + stacked(experts, p, [](auto& linear) { return linear->bias.unsqueeze(0); })
                : out;
  };
  return experts_swiglu(x, project);
}

// Every expert at once over a buffer padded to the busiest expert's count:
// row (expert, slot) holds that assignment's token, padding rows are zero
// and their outputs never read back.
torch::Tensor run_batched(const torch::Tensor& sorted, std::vector<Mlp>& experts,
                          const ExpertAssignments& a) {
  const int64_t n_experts = static_cast<int64_t>(experts.size());
  const int64_t rows = *std::max_element(a.counts.begin(), a.counts.end());
  const auto position = a.experts * rows + a.slots;
  const auto padded = torch::zeros({n_experts * rows, sorted.size(1)}, sorted.options())
                          .index_copy(0, position, sorted);
  const auto out = batched_swiglu(padded.view({n_experts, rows, -1}), experts);
  return out.view({n_experts * rows, -1}).index_select(0, position);
}

// The dtype the experts' matmuls run in: autocast's where it is on (it
// does not cast grouped GEMM's inputs itself), else the tokens'.
at::ScalarType grouped_compute_dtype(const torch::Tensor& tokens) {
  const bool cuda = tokens.is_cuda();
  return compat::Autocast::is_enabled(cuda) ? compat::Autocast::current_dtype(cuda)
                                            : tokens.scalar_type();
}

// Every expert at once, without padding: the sorted rows are already
// grouped by expert, so one grouped GEMM per projection multiplies group e's
// rows by expert e's weight. The groups' ends stay on the device.
torch::Tensor run_grouped(const torch::Tensor& sorted, std::vector<Mlp>& experts,
                          const ExpertAssignments& a) {
  const auto dtype = grouped_compute_dtype(sorted);
  const auto group_ends = a.kept_counts.cumsum(0).to(torch::kInt32);
  const bool bias = experts.front()->gate()->options.bias();
  const auto project = [&](const torch::Tensor& in, Projection p) {
    // [A, in] x [E, in, out]: the stacked [E, out, in] weights read
    // transposed, the layout of torchtitan's grouped experts.
    const auto weights = stacked(experts, p, [](auto& linear) { return linear->weight; });
    auto out = compat::grouped_mm(in.to(dtype), weights.to(dtype).transpose(1, 2), group_ends);
    if (!bias) return out;
    const auto biases = stacked(experts, p, [](auto& linear) { return linear->bias; });
    return out + biases.to(dtype).index_select(0, a.experts);
  };
  return experts_swiglu(sorted, project);
}

torch::Tensor run_experts(const torch::Tensor& sorted, std::vector<Mlp>& experts,
                          const ExpertAssignments& a, MoeDispatch dispatch) {
  switch (dispatch) {
    case MoeDispatch::kGrouped: return run_grouped(sorted, experts, a);
    case MoeDispatch::kBatched: return run_batched(sorted, experts, a);
    default: return run_looped(sorted, experts, a.counts);
  }
}

}  // namespace

torch::Tensor add_routed_experts(const torch::Tensor& base, const torch::Tensor& tokens,
                                 std::vector<Mlp>& experts, const ExpertAssignments& a,
                                 MoeDispatch resolved_dispatch) {
  if (a.token_ids.numel() == 0) return base;
  const auto sorted = tokens.index_select(0, a.token_ids);
  const auto outputs = run_experts(sorted, experts, a, resolved_dispatch);
  // The gate in the tokens' dtype, as the dense path weighs it; under
  // autocast the experts' outputs may be narrower than the sum they join.
  const auto weighted = outputs * a.gates.unsqueeze(1).to(tokens.scalar_type());
  return base.index_add(0, a.token_ids, weighted.to(base.scalar_type()));
}

}  // namespace muonlab::models
