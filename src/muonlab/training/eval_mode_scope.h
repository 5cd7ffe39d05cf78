// Eval mode and no autograd for a scope, train mode again after it: how
// every evaluation without training runs the model.
#pragma once

#include <torch/torch.h>

#include "muonlab/models/transformer.h"

namespace muonlab::training {

class EvalModeScope {
 public:
  explicit EvalModeScope(models::Transformer& model) : model_(model) { model_->eval(); }
  ~EvalModeScope() { model_->train(); }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  models::Transformer& model_;
  torch::NoGradGuard no_grad_;
};

}  // namespace muonlab::training
