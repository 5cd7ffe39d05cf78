// What a parameter is in the model, and so which optimizer takes it. Muon is
// for hidden 2-D matrices only; embeddings, the output head, norm gains,
// biases and scalars go to AdamW. Routing is by role, not by shape alone:
// the embedding is 2-D too.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace muonlab::optim {

enum class ParamRole {
  kMatrix,     // a hidden linear layer with no finer role
  kEmbedding,  // token or position embedding
  kHead,       // output projection to the vocabulary
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnO,
  kAttnQKV,    // fused Q, K, V projection
  kMlaDown,    // MLA down-projections (to the latents)
  kMlaUp,      // MLA up-projections (from the latents)
  kMlp,
  kExpert,     // a matrix of one MoE expert
  kRouter,     // MoE router (AdamW: its rows are per-expert logits, not a hidden map)
  kNorm,       // LayerNorm / RMSNorm gain
  kBias,
  kScalar,     // any other vector or scalar
};
std::string to_string(ParamRole role);
ParamRole parse_param_role(const std::string& name);

// A parameter with its name and role. exclude_from_muon marks a matrix that
// must go to AdamW although its role would allow Muon.
struct TaggedParam {
  std::string name;
  torch::Tensor tensor;
  ParamRole role = ParamRole::kMatrix;
  bool exclude_from_muon = false;
};

// Role from a parameter's name and shape, for models that do not tag their
// parameters: biases and 1-D gains by name and rank, embeddings
// ("wte", "wpe", "embed", "tok_emb", "pos_emb") and heads ("lm_head",
// "output") by name; every other 2-D parameter is a hidden matrix.
ParamRole infer_param_role(const std::string& name, const torch::Tensor& tensor);
std::vector<TaggedParam> tag_parameters(
    const torch::OrderedDict<std::string, torch::Tensor>& named);

// The tensors and the name -> tensor dictionary of tagged parameters.
std::vector<torch::Tensor> tensors_of(const std::vector<TaggedParam>& tagged);
torch::OrderedDict<std::string, torch::Tensor> names_of(const std::vector<TaggedParam>& tagged);

enum class OptimizerChoice { kMuon, kAdamW };
std::string to_string(OptimizerChoice choice);

// Empty if Muon may take the parameter, else the reason it may not.
std::string why_not_muon(const TaggedParam& param);
OptimizerChoice route(const TaggedParam& param);

}  // namespace muonlab::optim
