// Links muonlab::optim only. One Muon step without momentum history or weight
// decay moves the weight by lr * NS_5(G): its direction must be close to the
// exact polar factor U V^T of G (float64 SVD, computed here), which is what
// Newton-Schulz approximates.
#include <torch/torch.h>

#include <cstdio>

#include "muonlab/optimizers/muon.h"

int main() {
  torch::manual_seed(0);
  auto weight = torch::randn({16, 32}).requires_grad_();
  const auto before = weight.detach().clone();
  const auto gradient = torch::randn({16, 32});
  weight.mutable_grad() = gradient.clone();

  const double lr = 0.1;
  muonlab::optim::Muon muon({weight},
                            muonlab::optim::MuonOptions(lr).momentum(0.0).nesterov(false).weight_decay(0.0));
  muon.step();

  const auto update = ((before - weight.detach()) / lr).to(torch::kDouble);
  const auto svd = torch::linalg_svd(gradient.to(torch::kDouble), /*full_matrices=*/false);
  const auto polar = torch::matmul(std::get<0>(svd), std::get<2>(svd));
  const double cosine = (update * polar).sum().item<double>() / (update.norm() * polar.norm()).item<double>();
  std::printf("optim_consumer: cos(update, UV^T) = %.4f\n", cosine);
  return cosine > 0.95 ? 0 : 1;
}
