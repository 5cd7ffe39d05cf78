#include "muonlab/models/mlp.h"

#include "muonlab/models/linear.h"

namespace muonlab::models {

MlpImpl::MlpImpl(MlpKind kind, int64_t d_model, int64_t hidden, bool bias)
    : kind_(kind), bias_(bias) {
  if (kind != MlpKind::kSwiglu) {
    up_ = register_module("c_fc", make_linear(d_model, hidden, bias));
    down_ = register_module("c_proj", make_linear(hidden, d_model, bias));
  } else {
    gate_ = register_module("w1", make_linear(d_model, hidden, bias));
    down_ = register_module("w2", make_linear(hidden, d_model, bias));
    up_ = register_module("w3", make_linear(d_model, hidden, bias));
  }
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  if (kind_ == MlpKind::kGelu) {
    return down_(torch::gelu(up_(x), "tanh"));  // GPT-2's tanh approximation
  }
  if (kind_ == MlpKind::kRelu2) return down_(torch::relu(up_(x)).square());
  return down_(torch::silu(gate_(x)) * up_(x));
}

ParamTags MlpImpl::param_tags() const {
  ParamTags tags;
  const auto add = [&](const char* name) {
    for (auto& tag : linear_tags(name, optim::ParamRole::kMlp, bias_)) tags.push_back(std::move(tag));
  };
  if (kind_ != MlpKind::kSwiglu) {
    add("c_fc");
    add("c_proj");
  } else {
    add("w1");
    add("w2");
    add("w3");
  }
  return tags;
}

torch::Tensor& MlpImpl::output_weight() { return down_->weight; }

}  // namespace muonlab::models
