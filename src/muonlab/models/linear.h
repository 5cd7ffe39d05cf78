// torch::nn::Linear with the bias switch every muonlab module needs.
#pragma once

#include <torch/torch.h>

namespace muonlab::models {

inline torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

}  // namespace muonlab::models
