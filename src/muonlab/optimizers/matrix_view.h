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
//
// A matrix is read as out x in (torch::nn::Linear's [out, in]) unless the
// parameter is stored transposed, [in, out] (Hugging Face GPT-2's Conv1D,
// some MoE stacks [E, in, out]). Newton-Schulz does not care (the polar
// factor of the transpose is the transpose of the polar factor), but the
// shape scale s(out, in) and NorMuon's output neurons do.
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
// as stored (count = 1 unless batched). `shape()` is {rows, cols} or
// {count, rows, cols}. Transposed: each stored matrix is in x out.
struct MatrixView {
  int64_t count = 1;
  int64_t rows = 0;
  int64_t cols = 0;
  bool batched = false;
  bool transposed = false;

  std::vector<int64_t> shape() const;
  // `t` (the parameter's shape) as shape(); a copy only when t is not
  // contiguous.
  torch::Tensor of(const torch::Tensor& t) const;

  int64_t out_features() const { return transposed ? cols : rows; }
  int64_t in_features() const { return transposed ? rows : cols; }
  // shape() with each matrix out x in, and a tensor of shape() seen so
  // (a transposed view, no copy, where the parameter is stored transposed).
  std::vector<int64_t> out_in_shape() const;
  torch::Tensor out_in(const torch::Tensor& t) const;
};

// The view of `param` under `mode`, or a muonlab::Error naming the
// parameter, its shape, and the nd_params values that would accept it.
// `transposed` (stored [..., in, out]) applies to 2-D weights and stacks; a
// flattened kernel is always out x (in * ...).
MatrixView matrix_view(const torch::Tensor& param, NdParams mode, const std::string& name,
                       ParamRole role = ParamRole::kMatrix, bool transposed = false);

}  // namespace muonlab::optim
