// What the Hugging Face exports share: the model's parameters taken by name,
// each exactly once, so a parameter the mapping does not know about cannot
// be left out of an export silently; the contiguous fp32 CPU copies the
// exported files hold; and the list of fields a class cannot represent.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

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

// Collects "'field' = value (ARCH needs ...)" for each field a Hugging Face
// class cannot represent.
class HfFieldCheck {
 public:
  explicit HfFieldCheck(std::string architecture) : architecture_(std::move(architecture)) {}

  void need(bool ok, const char* field, const std::string& value, const std::string& needed) {
    if (!ok) problems_.push_back(fmt::format("'{}' = {} ({} needs {})", field, value, architecture_, needed));
  }
  static std::string text(bool value) { return value ? "true" : "false"; }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::string architecture_;
  std::vector<std::string> problems_;
};

}  // namespace muonlab::training
