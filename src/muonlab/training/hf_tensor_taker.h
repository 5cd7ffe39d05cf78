// What the Hugging Face exports share: the model's parameters taken by name,
// each exactly once, so a parameter the mapping does not know about cannot
// be left out of an export silently; and the contiguous fp32 CPU copies the
// exported files hold.
#pragma once

#include <set>
#include <string>

#include <torch/torch.h>

#include "muonlab/core/errors.h"
#include "muonlab/models/transformer.h"

namespace muonlab::training {

class HfTensorTaker {
 public:
  HfTensorTaker(const models::Transformer& model, std::string format)
      : params_(model->named_parameters()), format_(std::move(format)) {}

  torch::Tensor take(const std::string& name) {
    const torch::Tensor* found = params_.find(name);
    if (found == nullptr) fail("internal: the model has no parameter '{}' for the {} export", name, format_);
    taken_.insert(name);
    return found->detach();
  }

  void check_all_taken() const {
    for (const auto& item : params_) {
      if (taken_.count(item.key()) == 0) {
        fail("internal: parameter '{}' has no place in the {} export", item.key(), format_);
      }
    }
  }

 private:
  torch::OrderedDict<std::string, torch::Tensor> params_;
  std::string format_;
  std::set<std::string> taken_;
};

inline torch::Tensor contiguous_fp32_copy(const torch::Tensor& tensor) {
  return tensor.to(torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCPU), /*non_blocking=*/false,
                   /*copy=*/true, torch::MemoryFormat::Contiguous);
}

}  // namespace muonlab::training
