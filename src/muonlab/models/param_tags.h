// Modules describe their own parameters: role and head layout.
// The optimizers read these tags (through Transformer::tagged_parameters) to
// route parameters and group attention heads; nothing else needs to know a
// module's internals.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "muonlab/optimizers/param_role.h"

namespace muonlab::models {

struct ParamTag {
  std::string name;  // relative to the module that reports it
  optim::ParamRole role = optim::ParamRole::kMatrix;
  std::optional<optim::HeadLayout> heads;
};
using ParamTags = std::vector<ParamTag>;

// Tags of a torch::nn::Linear called `name`: its weight with `role` and
// `heads`, and its bias (if it has one) as a bias.
ParamTags linear_tags(const std::string& name, optim::ParamRole role, bool has_bias,
                      std::optional<optim::HeadLayout> heads = std::nullopt);

// Head layouts of the two kinds of attention weights.
optim::HeadLayout heads_in_rows(int64_t num_heads, int64_t head_dim,
                                std::vector<int64_t> segments = {});
optim::HeadLayout heads_in_cols(int64_t num_heads, int64_t head_dim);

// Appends `inner` to `out` with each name prefixed by "prefix.".
void append_tags(ParamTags& out, const std::string& prefix, const ParamTags& inner);

}  // namespace muonlab::models
