#include "muonlab/analysis/muon_input_tracker.h"

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::analysis {

MuonInputSource parse_muon_input_source(const std::string& name) {
  if (name == "momentum") return MuonInputSource::kMomentum;
  if (name == "gradient") return MuonInputSource::kGradient;
  fail("unknown Muon input source '{}': expected momentum or gradient", name);
}

std::string to_string(MuonInputSource source) {
  return source == MuonInputSource::kMomentum ? "momentum" : "gradient";
}

void MuonInputOptions::validate() const {
  if (!(momentum >= 0 && momentum < 1)) fail("momentum {} must lie in [0, 1)", momentum);
  if (second_moment.kind == optim::SecondMomentKind::kNone) {
    fail("Muon²'s input needs a second moment: kind full or factored, not none");
  }
  second_moment.validate();
}

MuonInputTracker::MuonInputTracker(const torch::Tensor& parameter, MuonInputOptions options)
    : options_(options) {
  options_.validate();
  if (parameter.dim() != 2) fail("Muon takes matrices; got shape {}", shape_string(parameter.sizes()));
  momentum_buffer_ = torch::zeros_like(parameter.detach());
  second_moment_ = optim::make_second_moment_state(parameter.detach(), options_.second_moment);
}

void MuonInputTracker::add_gradient(const torch::Tensor& grad) {
  if (grad.sizes() != momentum_buffer_.sizes()) {
    fail("gradient of shape {} for a matrix of shape {}", shape_string(grad.sizes()),
         shape_string(momentum_buffer_.sizes()));
  }
  const torch::Tensor G = grad.detach().to(momentum_buffer_.dtype());
  ++steps_;
  momentum_buffer_.mul_(options_.momentum).add_(G);
  const torch::Tensor mixed = options_.nesterov ? G + options_.momentum * momentum_buffer_ : momentum_buffer_.clone();
  muon_input_ = options_.source == MuonInputSource::kMomentum ? mixed : G.clone();
  // Every step, as the optimizer does, so V_hat holds every gradient so far.
  muon2_input_ = optim::precondition(muon_input_, G, second_moment_, steps_, options_.second_moment);
}

void MuonInputTracker::check_started() const {
  if (steps_ == 0) fail("no gradient yet: Muon's input needs at least one");
}

const torch::Tensor& MuonInputTracker::muon_input() const {
  check_started();
  return muon_input_;
}

const torch::Tensor& MuonInputTracker::muon2_input() const {
  check_started();
  return muon2_input_;
}

}  // namespace muonlab::analysis
