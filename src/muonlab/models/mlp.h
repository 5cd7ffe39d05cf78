// The dense feed-forward: GPT-2's GELU MLP (c_fc, c_proj), the same with
// ReLU squared (modded-nanogpt's), or LLaMA's SwiGLU (w1 gate, w3 up, w2
// down, as in torchtitan). MoE's shared experts are
// SwiGLU MLPs; its routed experts are stacked (RoutedExperts).
#pragma once

#include <torch/torch.h>

#include "muonlab/models/model_config.h"
#include "muonlab/models/param_tags.h"

namespace muonlab::models {

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(MlpKind kind, int64_t d_model, int64_t hidden, bool bias);
  torch::Tensor forward(const torch::Tensor& x);
  ParamTags param_tags() const;
  // The output projection, scaled down at init with the other residual writers.
  torch::Tensor& output_weight();

 private:
  MlpKind kind_;
  bool bias_;
  torch::nn::Linear up_{nullptr};    // c_fc (GELU, ReLU squared) or w3 (SwiGLU)
  torch::nn::Linear gate_{nullptr};  // w1 (SwiGLU only)
  torch::nn::Linear down_{nullptr};  // c_proj (GELU, ReLU squared) or w2 (SwiGLU)
};
TORCH_MODULE(Mlp);

}  // namespace muonlab::models
