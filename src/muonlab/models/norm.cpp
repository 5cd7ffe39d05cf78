#include "muonlab/models/norm.h"

namespace muonlab::models {

NormImpl::NormImpl(NormKind kind, int64_t dim, double eps, bool bias) : kind_(kind), eps_(eps) {
  weight_ = register_parameter("weight", torch::ones({dim}));
  if (bias && kind == NormKind::kLayerNorm) {
    bias_ = register_parameter("bias", torch::zeros({dim}));
  }
}

torch::Tensor rms_normalize(const torch::Tensor& x, double eps) {
  const auto x32 = x.scalar_type() == torch::kFloat64 ? x : x.to(torch::kFloat32);
  const auto inv_rms = torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return (x32 * inv_rms).to(x.scalar_type());
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  if (kind_ == NormKind::kRmsNorm) return rms_normalize(x, eps_) * weight_;
  return torch::layer_norm(x, {x.size(-1)}, weight_, bias_, eps_);
}

ParamTags NormImpl::param_tags() const {
  ParamTags tags{{"weight", optim::ParamRole::kNorm}};
  if (bias_.defined()) tags.push_back({"bias", optim::ParamRole::kBias});
  return tags;
}

}  // namespace muonlab::models
