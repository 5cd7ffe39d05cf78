// A MoE layer's routed experts, stored stacked: each SwiGLU projection is
// one [E, out, in] weight (and an [E, out] bias), expert e's matrix in
// slice e in nn.Linear's orientation. This is torchtitan's GroupedExperts
// layout: the batched and grouped dispatches multiply by the stored tensor
// itself instead of stacking every expert's weights on every forward, and
// Muon orthogonalizes each slice (nd_params "batch", the kExpert default).
//
// Names: "w1.weight" (gate), "w3.weight" (up), "w2.weight" (down), and
// "w1.bias" etc. where the model has biases, as a SwiGLU Mlp names its own.
#pragma once

#include <torch/torch.h>

#include "muonlab/models/expert_dispatch.h"
#include "muonlab/models/model_config.h"
#include "muonlab/models/param_tags.h"

namespace muonlab::models {

// One projection of every expert: weight [E, out, in], bias [E, out] or undefined.
class ExpertProjectionImpl : public torch::nn::Module {
 public:
  ExpertProjectionImpl(int64_t num_experts, int64_t in, int64_t out, bool bias);
  torch::Tensor weight;
  torch::Tensor bias;
};
TORCH_MODULE(ExpertProjection);

class RoutedExpertsImpl : public torch::nn::Module {
 public:
  RoutedExpertsImpl(int64_t num_experts, int64_t d_model, int64_t hidden, bool bias);

  // sorted: [A, d], the kept assignments' tokens grouped by expert as
  // sort_assignments ordered them; returns [A, d], row a run through the
  // SwiGLU of its expert. Three ways, with the same result:
  //  - looped: one SwiGLU per expert on its contiguous slice of the sorted
  //    tokens; no padding, so no wasted FLOPs (the CPU choice);
  //  - batched: three bmm calls over a buffer padded to the busiest
  //    expert's count; a handful of kernels whatever the number of experts,
  //    which is what a GPU needs when 62 small experts would otherwise mean
  //    hundreds of launches a layer;
  //  - grouped: three grouped GEMMs straight over the sorted tokens
  //    (LibTorch 2.9+): neither padding nor the host reading the experts'
  //    counts (torchtitan's way).
  torch::Tensor forward(const torch::Tensor& sorted, const ExpertAssignments& assignments,
                        MoeDispatch resolved_dispatch);

  ParamTags param_tags() const;
  int64_t size() const { return gate->weight.size(0); }
  bool has_bias() const { return gate->bias.defined(); }

  ExpertProjection gate{nullptr};  // w1
  ExpertProjection up{nullptr};    // w3
  ExpertProjection down{nullptr};  // w2: the output projection, a residual writer
};
TORCH_MODULE(RoutedExperts);

}  // namespace muonlab::models
