#include "muonlab/models/param_tags.h"

namespace muonlab::models {

ParamTags linear_tags(const std::string& name, optim::ParamRole role, bool has_bias,
                      std::optional<optim::HeadLayout> heads) {
  ParamTags tags{{name + ".weight", role, std::move(heads)}};
  if (has_bias) tags.push_back({name + ".bias", optim::ParamRole::kBias});
  return tags;
}

optim::HeadLayout heads_in_rows(int64_t num_heads, int64_t head_dim,
                                std::vector<int64_t> segments) {
  return {num_heads, head_dim, optim::HeadAxis::kRows, std::move(segments)};
}

optim::HeadLayout heads_in_cols(int64_t num_heads, int64_t head_dim) {
  return {num_heads, head_dim, optim::HeadAxis::kCols, {}};
}

void append_tags(ParamTags& out, const std::string& prefix, const ParamTags& inner) {
  for (auto tag : inner) {
    tag.name = prefix + "." + tag.name;
    out.push_back(std::move(tag));
  }
}

}  // namespace muonlab::models
