// LayerNorm or RMSNorm over the last dimension, one module for both so a
// config value picks it. Statistics are taken in float32 at least, so bf16
// activations normalize as accurately as float32 ones.
#pragma once

#include <torch/torch.h>

#include "muonlab/models/model_config.h"
#include "muonlab/models/param_tags.h"

namespace muonlab::models {

class NormImpl : public torch::nn::Module {
 public:
  // bias applies to LayerNorm only (RMSNorm has none).
  NormImpl(NormKind kind, int64_t dim, double eps, bool bias);
  torch::Tensor forward(const torch::Tensor& x);
  ParamTags param_tags() const;

 private:
  NormKind kind_;
  double eps_;
  torch::Tensor weight_;
  torch::Tensor bias_;
};
TORCH_MODULE(Norm);

// x / rms(x) without a gain: the normalization alone (RMSNorm's math).
torch::Tensor rms_normalize(const torch::Tensor& x, double eps);

}  // namespace muonlab::models
