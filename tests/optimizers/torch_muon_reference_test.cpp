// muonlab's Muon against PyTorch's own torch.optim.Muon: three steps on a
// wide, a tall and a square matrix from the reference file that
// scripts/device/torch_muon_reference.py writes (PyTorch's NS runs in bf16,
// so the tolerance is bf16's). Runs where MUONLAB_TORCH_MUON_REFERENCE names
// that file, and skips, saying so, elsewhere: the suite needs no Python.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "muonlab/core/safetensors_file.h"
#include "muonlab/optimizers/muon.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

struct TorchReference {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
  int64_t matrices = 0;

  const torch::Tensor& at(const std::string& name) const {
    const auto it = tensors.find(name);
    if (it == tensors.end()) ADD_FAILURE() << "the reference file has no tensor '" << name << "'";
    return it->second;
  }
};

std::optional<TorchReference> load_reference() {
  const char* path = std::getenv("MUONLAB_TORCH_MUON_REFERENCE");
  if (path == nullptr) return std::nullopt;
  auto content = load_safetensors(path);
  TorchReference reference;
  for (auto& [name, tensor] : content.tensors) reference.tensors[name] = tensor;
  reference.metadata = content.metadata;
  while (reference.tensors.count("w0." + std::to_string(reference.matrices))) ++reference.matrices;
  return reference;
}

// The weights after muonlab's Muon took the reference's gradients, and the
// largest relative error of its weight change against torch's.
double worst_change_error(const TorchReference& ref, const std::string& rule, MuonOptions options) {
  const torch::Device device = torch::cuda::is_available() ? torch::kCUDA : torch::kCPU;
  std::vector<torch::Tensor> params;
  for (int64_t i = 0; i < ref.matrices; ++i) {
    params.push_back(ref.at("w0." + std::to_string(i)).to(device, torch::kFloat32).set_requires_grad(true));
  }
  Muon muon(params, options.scale_rule(parse_scale_rule(rule)));
  const int64_t steps = std::stoll(ref.metadata.at("steps"));
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t i = 0; i < ref.matrices; ++i) {
      params[i].mutable_grad() = ref.at(fmt::format("g.{}.{}", s, i)).to(device, torch::kFloat32);
    }
    muon.step();
  }
  double worst = 0;
  for (int64_t i = 0; i < ref.matrices; ++i) {
    const auto w0 = ref.at("w0." + std::to_string(i)).to(torch::kFloat64);
    const auto theirs = ref.at(fmt::format("w.{}.{}", rule, i)).to(torch::kFloat64) - w0;
    const auto ours = params[i].detach().to(torch::kCPU, torch::kFloat64) - w0;
    worst = std::max(worst, (ours - theirs).norm().item<double>() / theirs.norm().item<double>());
  }
  return worst;
}

TEST(TorchMuonReference, ThreeStepsMatchTorchOptimMuon) {
  const auto reference = load_reference();
  if (!reference) {
    GTEST_SKIP() << "set MUONLAB_TORCH_MUON_REFERENCE to a file from scripts/device/torch_muon_reference.py";
  }
  ASSERT_GT(reference->matrices, 0);
  // torch.optim.Muon's conventions: EMA momentum (buf.lerp_), Nesterov as
  // grad.lerp(buf, mu), decoupled decay by lr * wd, NS in bf16.
  const auto options = MuonOptions(std::stod(reference->metadata.at("lr")))
                           .momentum(std::stod(reference->metadata.at("momentum")))
                           .weight_decay(std::stod(reference->metadata.at("weight_decay")))
                           .momentum_kind(MomentumKind::kEma)
                           .nesterov(true)
                           .ns_dtype(NsDtype::kBFloat16);
  for (const std::string rule : {"original", "match_rms_adamw"}) {
    const double error = worst_change_error(*reference, rule, options);
    RecordProperty("relative_error_" + rule, fmt::format("{:.3e}", error));
    EXPECT_LT(error, 3e-2) << rule << " against torch " << reference->metadata.at("torch");
    // The tolerance tells conventions apart: classical momentum instead of
    // torch's EMA misses by far more.
    EXPECT_GT(worst_change_error(*reference, rule, MuonOptions(options).nesterov(false)), 0.1) << rule;
  }
}

}  // namespace
}  // namespace muonlab::optim
