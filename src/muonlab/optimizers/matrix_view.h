// How Muon reads a parameter as the matrices it orthogonalizes. A 2-D
// weight is one matrix. Parameters of more dimensions come in two kinds
// that need different readings:
//   a convolution kernel [out, in, kh, kw] is one out x (in*kh*kw) map
//     (Keller Jordan's muon.py flattens it the same way);
//   a stack of MoE expert weights [E, r, c] is E independent r x c maps,
//     each orthogonalized (and scaled) on its own, all in one batched call
//     (the fused CPU step: one by one).
// A 3-D tensor can be either (a Conv1d kernel or a stack of experts), so
// kAuto decides by the parameter's role and refuses when it cannot tell.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "muonlab/core/enum_names.h"
#include "muonlab/optimizers/param_role.h"

namespace muonlab::optim {

enum class NdParams {
  kAuto,     // 2-D as is; >= 4-D flattened; 3-D batched if the role is expert, else refused
  kFlatten,  // [d0, d1, ...] -> d0 x (d1 * ...)
  kBatch,    // [..., r, c] -> a stack of r x c matrices
  kRefuse,   // only 2-D parameters
};
const EnumNames<NdParams>& nd_params_names();  // "auto", "flatten", "batch", "refuse"
NdParams parse_nd_params(const std::string& name);
std::string to_string(NdParams mode);

// The matrices Muon sees in one parameter: `count` matrices of rows x cols
// (count = 1 unless batched). `shape()` is {rows, cols} or {count, rows, cols}.
struct MatrixView {
  int64_t count = 1;
  int64_t rows = 0;
  int64_t cols = 0;
  bool batched = false;

  std::vector<int64_t> shape() const;
  // `t` (the parameter's shape) as shape(); a copy only when t is not
  // contiguous.
  torch::Tensor of(const torch::Tensor& t) const;
};

// The view of `param` under `mode`, or a muonlab::Error naming the
// parameter, its shape, and the nd_params values that would accept it.
MatrixView matrix_view(const torch::Tensor& param, NdParams mode, const std::string& name,
                       ParamRole role = ParamRole::kMatrix);

}  // namespace muonlab::optim
