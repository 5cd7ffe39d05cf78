#include "muonlab/models/routed_experts.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "muonlab/core/torch_compat.h"

namespace muonlab::models {

ExpertProjectionImpl::ExpertProjectionImpl(int64_t num_experts, int64_t in, int64_t out, bool bias) {
  // nn.Linear's default initialization, per expert (the Transformer
  // reinitializes every weight itself).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = register_parameter("weight", torch::empty({num_experts, out, in}).uniform_(-bound, bound));
  if (bias) this->bias = register_parameter("bias", torch::empty({num_experts, out}).uniform_(-bound, bound));
}

RoutedExpertsImpl::RoutedExpertsImpl(int64_t num_experts, int64_t d_model, int64_t hidden, bool bias) {
  gate = register_module("w1", ExpertProjection(num_experts, d_model, hidden, bias));
  down = register_module("w2", ExpertProjection(num_experts, hidden, d_model, bias));
  up = register_module("w3", ExpertProjection(num_experts, d_model, hidden, bias));
}

ParamTags RoutedExpertsImpl::param_tags() const {
  ParamTags tags;
  for (const char* name : {"w1", "w2", "w3"}) {
    for (auto& tag : linear_tags(name, optim::ParamRole::kExpert, has_bias())) tags.push_back(std::move(tag));
  }
  return tags;
}

namespace {

enum class Projection { kGate, kUp, kDown };

const ExpertProjectionImpl& projection_of(const RoutedExpertsImpl& experts, Projection which) {
  switch (which) {
    case Projection::kGate: return *experts.gate;
    case Projection::kUp: return *experts.up;
    default: return *experts.down;
  }
}

// The experts' SwiGLU, down(silu(gate(x)) * up(x)), with each projection
// made by project(input, which): the one formula every dispatch shares.
template <typename Project>
torch::Tensor swiglu(const torch::Tensor& x, Project project) {
  const auto hidden = torch::silu(project(x, Projection::kGate)) * project(x, Projection::kUp);
  return project(hidden, Projection::kDown);
}

// Expert by expert, each on its contiguous slice of the sorted tokens. The
// weights are unbound into per-expert views (not indexed one at a time, whose
// backward would zero-fill a full-size gradient per expert): backward stacks
// the experts' gradients once. split, not narrow, for the same reason.
torch::Tensor run_looped(const torch::Tensor& sorted, const RoutedExpertsImpl& experts,
                         const std::vector<int64_t>& counts) {
  struct Slices {
    std::vector<torch::Tensor> weight, bias;
  };
  std::array<Slices, 3> slices;
  for (const auto which : {Projection::kGate, Projection::kUp, Projection::kDown}) {
    const auto& p = projection_of(experts, which);
    slices[static_cast<size_t>(which)] = {p.weight.unbind(0),
                                          p.bias.defined() ? p.bias.unbind(0) : std::vector<torch::Tensor>{}};
  }
  const auto inputs = sorted.split_with_sizes(counts);
  std::vector<torch::Tensor> outputs;
  for (size_t e = 0; e < counts.size(); ++e) {
    if (counts[e] == 0) continue;
    outputs.push_back(swiglu(inputs[e], [&](const torch::Tensor& in, Projection which) {
      const auto& s = slices[static_cast<size_t>(which)];
      return torch::linear(in, s.weight[e], s.bias.empty() ? torch::Tensor() : s.bias[e]);
    }));
  }
  return torch::cat(outputs);
}

// Every expert at once over a buffer padded to the busiest expert's count:
// row (expert, slot) holds that assignment's token, padding rows are zero
// and their outputs never read back. Three bmm calls whatever the number of
// experts.
torch::Tensor run_batched(const torch::Tensor& sorted, const RoutedExpertsImpl& experts,
                          const ExpertAssignments& a) {
  const int64_t n_experts = experts.size();
  const int64_t rows = *std::max_element(a.counts.begin(), a.counts.end());
  const auto position = a.experts * rows + a.slots;
  const auto padded = torch::zeros({n_experts * rows, sorted.size(1)}, sorted.options())
                          .index_copy(0, position, sorted);
  const auto out = swiglu(padded.view({n_experts, rows, -1}), [&](const torch::Tensor& in, Projection which) {
    const auto& p = projection_of(experts, which);
    // [E, C, in] x [E, in, out], plus [E, 1, out].
    auto product = torch::bmm(in, p.weight.transpose(1, 2));
    return p.bias.defined() ? product + p.bias.unsqueeze(1) : product;
  });
  return out.view({n_experts * rows, -1}).index_select(0, position);
}

// The dtype the experts' matmuls run in: autocast's where it is on (it
// does not cast grouped GEMM's inputs itself), else the tokens'.
at::ScalarType grouped_compute_dtype(const torch::Tensor& tokens) {
  const bool cuda = tokens.is_cuda();
  return compat::Autocast::is_enabled(cuda) ? compat::Autocast::current_dtype(cuda)
                                            : tokens.scalar_type();
}

// Every expert at once, without padding: the sorted rows are already
// grouped by expert, so one grouped GEMM per projection multiplies group e's
// rows by expert e's weight. The groups' ends stay on the device.
torch::Tensor run_grouped(const torch::Tensor& sorted, const RoutedExpertsImpl& experts,
                          const ExpertAssignments& a) {
  const auto dtype = grouped_compute_dtype(sorted);
  const auto group_ends = a.group_sizes.cumsum(0).to(torch::kInt32);
  return swiglu(sorted, [&](const torch::Tensor& in, Projection which) {
    const auto& p = projection_of(experts, which);
    // [A, in] x [E, in, out]: the [E, out, in] weight read transposed.
    auto product = compat::grouped_mm(in.to(dtype), p.weight.to(dtype).transpose(1, 2), group_ends);
    return p.bias.defined() ? product + p.bias.to(dtype).index_select(0, a.experts) : product;
  });
}

}  // namespace

torch::Tensor RoutedExpertsImpl::forward(const torch::Tensor& sorted, const ExpertAssignments& assignments,
                                         MoeDispatch resolved_dispatch) {
  switch (resolved_dispatch) {
    case MoeDispatch::kGrouped: return run_grouped(sorted, *this, assignments);
    case MoeDispatch::kBatched: return run_batched(sorted, *this, assignments);
    default: return run_looped(sorted, *this, assignments.counts);
  }
}

}  // namespace muonlab::models
