#include "muonlab/optimizers/neuron_norm.h"

#include <cmath>

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::optim {

void NeuronNormOptions::validate() const {
  // Written as !(good) so that NaN fails too.
  if (!(beta2 >= 0 && beta2 < 1)) fail("NorMuon neuron_beta2 = {}: expected a number in [0, 1)", beta2);
  if (!(eps > 0 && std::isfinite(eps))) fail("NorMuon neuron_eps = {}: expected a finite number > 0", eps);
}

std::vector<int64_t> neuron_state_shape(c10::IntArrayRef view_shape) {
  std::vector<int64_t> shape = view_shape.vec();
  if (shape.size() < 2) fail("NorMuon needs a matrix or a stack of matrices [..., r, c], got shape {}", shape_string(view_shape));
  shape.pop_back();
  return shape;
}

torch::Tensor make_neuron_state(const torch::Tensor& param, c10::IntArrayRef view_shape) {
  const auto dtype = param.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  return torch::zeros(neuron_state_shape(view_shape), param.options().dtype(dtype));
}

torch::Tensor normalize_neurons(const torch::Tensor& orthogonalized, torch::Tensor& state,
                                const NeuronNormOptions& options) {
  if (state.sizes() != c10::IntArrayRef(neuron_state_shape(orthogonalized.sizes()))) {
    fail("NorMuon state has shape {}, expected {} for an update of shape {}", shape_string(state.sizes()),
         shape_string(neuron_state_shape(orthogonalized.sizes())), shape_string(orthogonalized.sizes()));
  }
  const torch::Tensor o = orthogonalized.to(state.scalar_type());
  state.lerp_(o.square().mean(-1), 1.0 - options.beta2);
  const torch::Tensor normalized = o / (state.sqrt() + options.eps).unsqueeze(-1);
  const auto frobenius = [](const torch::Tensor& m) { return m.square().sum({-2, -1}, /*keepdim=*/true).sqrt(); };
  // A zero update stays zero (0 / eps, then 0 * 0 / tiny).
  const torch::Tensor rescale = frobenius(o) / frobenius(normalized).clamp_min(1e-30);
  return (normalized * rescale).to(orthogonalized.scalar_type());
}

}  // namespace muonlab::optim
