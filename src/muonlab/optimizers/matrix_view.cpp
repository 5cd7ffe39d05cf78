#include "muonlab/optimizers/matrix_view.h"

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::optim {

const EnumNames<NdParams>& nd_params_names() {
  static const EnumNames<NdParams> names{
      {NdParams::kAuto, "auto"}, {NdParams::kFlatten, "flatten"}, {NdParams::kBatch, "batch"}, {NdParams::kRefuse, "refuse"}};
  return names;
}

NdParams parse_nd_params(const std::string& name) {
  return parse_enum(nd_params_names(), name, "nd_params");
}

std::string to_string(NdParams mode) { return enum_name(nd_params_names(), mode); }

std::vector<int64_t> MatrixView::shape() const {
  if (batched) return {count, rows, cols};
  return {rows, cols};
}

torch::Tensor MatrixView::of(const torch::Tensor& t) const { return t.reshape(shape()); }

std::vector<int64_t> MatrixView::out_in_shape() const {
  std::vector<int64_t> s = shape();
  if (transposed) std::swap(s[s.size() - 2], s[s.size() - 1]);
  return s;
}

torch::Tensor MatrixView::out_in(const torch::Tensor& t) const { return transposed ? t.transpose(-2, -1) : t; }

namespace {

MatrixView flattened(const torch::Tensor& param) {
  return {1, param.size(0), param.numel() / param.size(0), false};
}

MatrixView batched(const torch::Tensor& param) {
  const int64_t rows = param.size(-2), cols = param.size(-1);
  return {param.numel() / (rows * cols), rows, cols, true};
}

// The view as stored, before `transposed`.
MatrixView read_as_matrices(const torch::Tensor& param, NdParams mode, const std::string& name, ParamRole role) {
  if (param.dim() < 2) {
    fail("parameter '{}' cannot be optimized by Muon: it has shape {} and Muon takes matrices; give it to AdamW",
         name, shape_string(param.sizes()));
  }
  if (param.numel() == 0) fail("parameter '{}' has shape {}: Muon needs a non-empty matrix", name, shape_string(param.sizes()));
  if (param.dim() == 2) return {1, param.size(0), param.size(1), false};
  switch (mode) {
    case NdParams::kFlatten: return flattened(param);
    case NdParams::kBatch: return batched(param);
    case NdParams::kAuto:
      if (param.dim() >= 4) return flattened(param);
      if (role == ParamRole::kExpert) return batched(param);
      fail("parameter '{}' has shape {}: a 3-D tensor may be a Conv1d kernel (one out x (in*k) matrix: "
           "nd_params = \"flatten\") or a stack of matrices such as MoE experts (nd_params = \"batch\"); "
           "say which",
           name, shape_string(param.sizes()));
    case NdParams::kRefuse: break;
  }
  fail("parameter '{}' cannot be optimized by Muon: it has shape {} and nd_params = \"refuse\" takes 2-D matrices "
       "only (\"flatten\" reads it as {} x {}, \"batch\" as a stack of {} x {})",
       name, shape_string(param.sizes()), param.size(0), param.numel() / param.size(0), param.size(-2),
       param.size(-1));
}

}  // namespace

MatrixView matrix_view(const torch::Tensor& param, NdParams mode, const std::string& name, ParamRole role,
                       bool transposed) {
  MatrixView view = read_as_matrices(param, mode, name, role);
  if (transposed && param.dim() > 2 && !view.batched) {
    fail("parameter '{}' of shape {} is marked as stored transposed ([in, out]), which applies to 2-D weights and "
         "stacks of matrices (nd_params = \"batch\"), not to a kernel flattened to out x (in * ...)",
         name, shape_string(param.sizes()));
  }
  view.transposed = transposed;
  return view;
}

}  // namespace muonlab::optim
