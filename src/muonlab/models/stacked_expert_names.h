// Weights written before a MoE layer's routed experts were stored stacked
// name each expert's matrices apart, "h.0.moe.expert_3.w1.weight" [out, in];
// the model now holds all of them in one tensor, "h.0.moe.experts.w1.weight"
// [E, out, in] (RoutedExperts). Loading goes through this rewrite, so
// checkpoints and model files of either layout load into today's model.
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

}  // namespace muonlab::models
