// DeepSeekMoE feed-forward (docs/algorithms.md, Mixture of Experts): N_s
// shared SwiGLU experts applied to every token, plus top-k of N_r routed
// experts chosen by s = softmax(W_router h), each output weighted by its
// gate s_i (renormalized over the chosen k if asked). Dropless by default;
// with a capacity factor, an expert takes at most ceil(cf * T * k / N_r)
// tokens, in token order, and the overflow falls through to the residual.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "muonlab/models/mlp.h"
#include "muonlab/models/model_config.h"
#include "muonlab/models/param_tags.h"
#include "muonlab/models/routed_experts.h"

namespace muonlab::models {

// What routing did in one forward pass of one MoE layer.
struct MoeStats {
  torch::Tensor load;         // [N_r] fraction of the T * k assignments per expert
                              // (float64, on the layer's device)
  int64_t assignments = 0;    // T * k
  // 0-dim int64: assignments over capacity, sent to the residual (on the
  // layer's device once a forward pass has set it).
  torch::Tensor dropped = torch::zeros({}, torch::kInt64);
  int64_t capacity = 0;       // per expert; 0 when dropless
};

// One log line per MoE layer for the training log: the busiest and idlest
// expert's share of assignments against the balanced share 1/N_r, and the
// dropped count, e.g. "moe h.3: load max 0.094 min 0.002 (balanced 0.016),
// dropped 12 of 3072".
std::string describe_routing(const std::vector<MoeStats>& layers,
                             const std::vector<int64_t>& layer_indices = {});

struct MoeOutput {
  torch::Tensor output;        // shared + routed experts, without the residual
  torch::Tensor balance_loss;  // alpha * sum_i f_i P_i, a scalar
  MoeStats stats;
};

class MoeImpl : public torch::nn::Module {
 public:
  explicit MoeImpl(const ModelConfig& config);
  MoeOutput forward(const torch::Tensor& x);
  ParamTags param_tags() const;
  // Output projections of every expert, scaled down at init with the other
  // residual writers.
  std::vector<torch::Tensor*> output_weights();

  RoutedExperts& routed_experts() { return routed_; }
  torch::nn::Linear& router() { return router_; }

 private:
  // Most assignments an expert keeps from n_tokens tokens; 0 when dropless.
  int64_t capacity(int64_t n_tokens) const;

  MoeConfig config_;
  torch::nn::Linear router_{nullptr};
  std::vector<Mlp> shared_;
  RoutedExperts routed_{nullptr};
};
TORCH_MODULE(Moe);

// alpha * sum_i f_i P_i with f_i = N_r / (k T) * (tokens routed to i) and
// P_i = mean over tokens of s_i. scores: [T, N_r]; counts: [N_r].
torch::Tensor expert_balance_loss(const torch::Tensor& scores, const torch::Tensor& counts,
                                  int64_t top_k, double alpha);

}  // namespace muonlab::models
