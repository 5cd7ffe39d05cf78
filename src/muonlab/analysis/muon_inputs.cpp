#include "muonlab/analysis/muon_inputs.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <cmath>
#include <optional>
#include <tuple>

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/optimizers/matrix_view.h"
#include "muonlab/optimizers/param_role.h"

namespace muonlab::analysis {

// ---- test matrices ----------------------------------------------------------

namespace {

const char* kind_name(TestMatrixKind kind) {
  return kind == TestMatrixKind::kRandom ? "random" : "ill-conditioned";
}

torch::Tensor gaussian(int64_t rows, int64_t cols, at::Generator& generator) {
  return torch::randn({rows, cols}, generator, torch::kFloat64);
}

// rows x k with orthonormal columns (k <= rows), from the QR of a Gaussian.
torch::Tensor orthonormal_columns(int64_t rows, int64_t k, at::Generator& generator) {
  return std::get<0>(torch::linalg_qr(gaussian(rows, k, generator)));
}

torch::Tensor with_log_spaced_singular_values(int64_t rows, int64_t cols, double condition,
                                              at::Generator& generator) {
  const int64_t k = std::min(rows, cols);
  const auto s = torch::logspace(0, -std::log10(condition), k, 10.0, torch::kFloat64);
  const auto U = orthonormal_columns(rows, k, generator);
  const auto V = orthonormal_columns(cols, k, generator);
  return torch::matmul(U * s.unsqueeze(0), V.t());
}

}  // namespace

void TestMatrixOptions::validate() const {
  if (rows < 1 || cols < 1) fail("test matrix shape {}x{}: both sides must be at least 1", rows, cols);
  if (count < 1) fail("test matrix count {} must be at least 1", count);
  if (kind == TestMatrixKind::kIllConditioned && !(condition >= 1 && std::isfinite(condition))) {
    fail("--condition {}: expected a finite number >= 1", condition);
  }
}

std::string describe(const TestMatrixOptions& options) {
  std::string text = fmt::format("{} {}x{}", kind_name(options.kind), options.rows, options.cols);
  if (options.kind == TestMatrixKind::kIllConditioned) text += fmt::format(", condition {:g}", options.condition);
  return text;
}

torch::Tensor test_matrix(const TestMatrixOptions& options, uint64_t seed) {
  options.validate();
  at::Generator generator = at::detail::createCPUGenerator(seed);
  const torch::Tensor M = options.kind == TestMatrixKind::kRandom
                              ? gaussian(options.rows, options.cols, generator)
                              : with_log_spaced_singular_values(options.rows, options.cols, options.condition,
                                                                generator);
  return M.to(torch::kFloat32);
}

std::vector<MuonInputPair> test_matrix_inputs(const TestMatrixOptions& matrices, const MuonInputOptions& options) {
  matrices.validate();
  std::vector<MuonInputPair> pairs;
  for (int64_t i = 0; i < matrices.count; ++i) {
    const uint64_t seed = matrices.seed + static_cast<uint64_t>(i);
    const torch::Tensor G = test_matrix(matrices, seed);
    MuonInputTracker tracker(G, options);
    tracker.add_gradient(G);
    pairs.push_back({fmt::format("{} seed {}", kind_name(matrices.kind), seed), tracker.muon_input(),
                     tracker.muon2_input()});
  }
  return pairs;
}

// ---- a model's own gradients ------------------------------------------------

namespace {

// One matrix Muon orthogonalizes: a 2-D parameter, or matrix `index` of a
// stack of MoE experts' matrices [E, r, c], named "name[index]".
struct TrackedParameter {
  std::string name;
  torch::Tensor tensor;
  std::optional<int64_t> index;
  MuonInputTracker tracker;
};

std::vector<TrackedParameter> muon_parameters(const models::Transformer& model, const MuonInputOptions& options) {
  std::vector<TrackedParameter> tracked;
  for (const optim::TaggedParam& param : model->tagged_parameters()) {
    if (optim::route(param) != optim::OptimizerChoice::kMuon) continue;
    // Read as Muon reads it (its role says whether a 3-D tensor is a stack).
    if (!optim::matrix_view(param.tensor, optim::NdParams::kAuto, param.name, param.role).batched) {
      tracked.push_back({param.name, param.tensor, std::nullopt, MuonInputTracker(param.tensor, options)});
      continue;
    }
    for (int64_t i = 0; i < param.tensor.size(0); ++i) {
      tracked.push_back({fmt::format("{}[{}]", param.name, i), param.tensor, i,
                         MuonInputTracker(param.tensor[i], options)});
    }
  }
  if (tracked.empty()) fail("the model has no parameter that Muon would take");
  return tracked;
}

void free_gradients(models::Transformer& model) {
  for (torch::Tensor& parameter : model->parameters()) {
    if (parameter.mutable_grad().defined()) parameter.mutable_grad().reset();
  }
}

// A parameter no token reached this batch (an MoE expert left idle) has no
// gradient: zero, as the optimizer would see it after zero_grad.
torch::Tensor gradient_of(const TrackedParameter& param, int64_t batch) {
  const auto own_part = [&](const torch::Tensor& t) { return param.index ? t[*param.index] : t; };
  if (!param.tensor.grad().defined()) return torch::zeros_like(own_part(param.tensor));
  const torch::Tensor grad = own_part(param.tensor.grad());
  if (!torch::isfinite(grad).all().item<bool>()) {
    fail("batch {}: the gradient of '{}' is not finite", batch + 1, param.name);
  }
  return grad;
}

void backward_one_batch(models::Transformer& model, const data::Batch& batch, const torch::Device& device,
                        bool bf16_autocast) {
  torch::Tensor loss;
  {
    compat::Autocast autocast(device, bf16_autocast, torch::kBFloat16);
    const models::ModelOutput output = model->forward(batch.inputs.to(device));
    loss = models::training_loss(output, batch.targets.to(device));
  }
  if (!std::isfinite(loss.item<double>())) fail("the training loss is not finite ({})", loss.item<double>());
  loss.backward();
}

}  // namespace

std::vector<MuonInputPair> model_muon_inputs(models::Transformer& model, const std::function<data::Batch()>& next_batch,
                                             const ModelGradientOptions& gradients, const MuonInputOptions& options) {
  if (gradients.batches < 1) fail("--batches {}: need at least one batch", gradients.batches);
  std::vector<TrackedParameter> tracked = muon_parameters(model, options);
  const torch::Device device = tracked.front().tensor.device();
  model->train();
  for (int64_t b = 0; b < gradients.batches; ++b) {
    free_gradients(model);
    backward_one_batch(model, next_batch(), device, gradients.bf16_autocast);
    for (TrackedParameter& param : tracked) param.tracker.add_gradient(gradient_of(param, b));
  }
  free_gradients(model);
  std::vector<MuonInputPair> pairs;
  for (const TrackedParameter& param : tracked) {
    pairs.push_back({param.name, param.tracker.muon_input(), param.tracker.muon2_input()});
  }
  return pairs;
}

}  // namespace muonlab::analysis
