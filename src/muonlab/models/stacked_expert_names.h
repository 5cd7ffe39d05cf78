// Weights written before a MoE layer's routed experts were stored stacked
// name each expert's matrices apart, "h.0.moe.expert_3.w1.weight" [out, in];
// the model now holds all of them in one tensor, "h.0.moe.experts.w1.weight"
// [E, out, in] (RoutedExperts). Loading goes through this rewrite, so
// checkpoints and model files of either layout load into today's model, and
// checkpoints of either layout resume.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace muonlab::models {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Replaces every complete set "P.expert_0.R" .. "P.expert_{E-1}.R" by one
// tensor "P.experts.R", their stack, where the first of them stood; other
// names keep their place. A set with a gap or with unequal shapes is an
// error naming the tensor, after `source` (e.g. "'run/model.safetensors'"). Returns how many
// per-expert tensors were stacked: 0 for a file in today's layout.
int64_t stack_per_expert_tensors(NamedTensors& tensors, const std::string& source);

// The names the older layout gave the slices of today's stacked tensor
// `name`: "P.experts.R" -> "P.expert_0.R" .. "P.expert_{E-1}.R"; empty for
// any other name. (How optimizer state saved per expert finds its entries:
// OptimizerBase::set_saved_slice_names.)
std::vector<std::string> per_expert_names(const std::string& name, int64_t num_experts);

}  // namespace muonlab::models
