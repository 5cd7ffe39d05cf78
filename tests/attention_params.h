// Attention-shaped Muon parameters with their head layouts: a fused QKV with
// 4 heads (in rows), an output projection (heads in columns) and an MLP
// matrix, for Group Muon and device tests.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "muonlab/optimizers/param_role.h"
#include "test_util.h"

namespace muonlab::testing {

inline std::vector<optim::TaggedParam> attention_params(torch::Device device, torch::Dtype dtype,
                                                        int64_t head_dim = 16) {
  using optim::HeadAxis, optim::HeadLayout, optim::ParamRole;
  constexpr int64_t kHeads = 4;
  const int64_t width = kHeads * head_dim;
  std::vector<optim::TaggedParam> params(3);
  params[0] = {"attn.qkv", random_matrix(3 * width, width, 1), ParamRole::kAttnQKV};
  params[0].heads = HeadLayout{3 * kHeads, head_dim, HeadAxis::kRows, {kHeads, kHeads, kHeads}};
  params[1] = {"attn.o", random_matrix(width, width, 2), ParamRole::kAttnO};
  params[1].heads = HeadLayout{kHeads, head_dim, HeadAxis::kCols, {}};
  params[2] = {"mlp.fc", random_matrix(4 * width, width, 3), ParamRole::kMlp};
  for (auto& p : params) p.tensor = p.tensor.to(device, dtype).set_requires_grad(true);
  return params;
}

}  // namespace muonlab::testing
