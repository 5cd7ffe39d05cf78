// How a MoE layer's routed experts see their tokens: assignments sorted by
// expert (token order kept inside each expert, so capacity keeps the
// earliest), one gather of the tokens, the experts (RoutedExperts, looped,
// batched or grouped), one weighted scatter back. Only looped and batched
// need the experts' counts on the host; a grouped layer therefore runs
// without a single device-to-host copy, with or without a capacity.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "muonlab/models/model_config.h"

namespace muonlab::models {

class RoutedExpertsImpl;

// The (token, choice) pairs an MoE layer runs through its experts, grouped
// by expert: the kept ones, and under a capacity without host counts also
// the dropped ones, with a zero gate.
struct ExpertAssignments {
  torch::Tensor token_ids;      // [A] token of each assignment
  torch::Tensor gates;          // [A] its gate (0 where dropped)
  torch::Tensor experts;        // [A] its expert (non-decreasing)
  torch::Tensor slots;          // [A] its position among its expert's tokens
  torch::Tensor group_sizes;    // [N_r] rows per expert in that order, on the device
  std::vector<int64_t> counts;  // the same on the host, where asked for (else empty)
  torch::Tensor routed_counts;  // [N_r] assignments per expert before capacity, on the device
  torch::Tensor dropped;        // 0-dim: assignments over capacity, on the device
};

// chosen, gates: [T, k] from top-k routing. capacity 0 keeps everything;
// otherwise each expert keeps its first `capacity` tokens in token order.
// counts_on_host: also fill `counts`, and leave the dropped assignments out
// (finding them is a host sync, and these dispatches sync anyway). Without
// it (grouped), a dropped assignment stays in its expert's group with a zero
// gate: the output and gradients of dropping it, for the FLOPs of the
// dropless layer and no host sync.
ExpertAssignments sort_assignments(const torch::Tensor& chosen, const torch::Tensor& gates,
                                   int64_t num_experts, int64_t capacity, bool counts_on_host);

// Whether `dispatch` (resolved) reads the experts' counts on the host.
inline bool needs_counts_on_host(MoeDispatch dispatch) { return dispatch != MoeDispatch::kGrouped; }

// auto: looped on CPU, batched on CUDA, by what each trades: kernel launches
// (several per expert) against FLOPs on padding (up to the busiest expert).
// `muonlab bench train --set moe.dispatch=...` measures each; grouped is
// asked for by name until it has been timed on a GPU.
MoeDispatch resolve_dispatch(MoeDispatch requested, const torch::Device& device);

// sum over kept assignments a of gate_a * expert_a(tokens[token_a]), as a
// [T, d] tensor added onto `base` (the shared experts' output).
torch::Tensor add_routed_experts(const torch::Tensor& base, const torch::Tensor& tokens,
                                 RoutedExpertsImpl& experts, const ExpertAssignments& assignments,
                                 MoeDispatch resolved_dispatch);

}  // namespace muonlab::models
