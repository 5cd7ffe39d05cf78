#include "muonlab/optimizers/param_role.h"

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

#include <array>
#include <utility>

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::optim {

namespace {

constexpr std::array<std::pair<ParamRole, const char*>, 16> kRoleNames{{
    {ParamRole::kMatrix, "matrix"},     {ParamRole::kEmbedding, "embedding"},
    {ParamRole::kHead, "head"},         {ParamRole::kAttnQ, "attn_q"},
    {ParamRole::kAttnK, "attn_k"},      {ParamRole::kAttnV, "attn_v"},
    {ParamRole::kAttnO, "attn_o"},      {ParamRole::kAttnQKV, "attn_qkv"},
    {ParamRole::kMlaDown, "mla_down"},  {ParamRole::kMlaUp, "mla_up"},
    {ParamRole::kMlp, "mlp"},           {ParamRole::kExpert, "expert"},
    {ParamRole::kRouter, "router"},     {ParamRole::kNorm, "norm"},
    {ParamRole::kBias, "bias"},         {ParamRole::kScalar, "scalar"},
}};

bool contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// True for roles that are hidden linear maps, the only ones Muon whitens.
bool is_hidden_matrix_role(ParamRole role) {
  switch (role) {
    case ParamRole::kEmbedding:
    case ParamRole::kHead:
    case ParamRole::kRouter:
    case ParamRole::kNorm:
    case ParamRole::kBias:
    case ParamRole::kScalar:
      return false;
    default:
      return true;
  }
}

}  // namespace

std::string to_string(HeadAxis axis) {
  return axis == HeadAxis::kRows ? "rows" : "cols";
}

void HeadLayout::validate() const {
  if (num_heads < 1 || head_dim < 1) fail("head layout of {} heads of {}: expected positive sizes", num_heads, head_dim);
  int64_t total = 0;
  for (const int64_t count : segment_heads) total += count;
  if (!segment_heads.empty() && total != num_heads) {
    fail("head layout segments {} add up to {} heads, not num_heads = {}", fmt::join(segment_heads, ","), total,
         num_heads);
  }
  if (interleave < 1) fail("head layout interleave {}: expected at least 1", interleave);
  for (const int64_t count : segment_heads.empty() ? std::vector<int64_t>{num_heads} : segment_heads) {
    if (count % interleave != 0) {
      fail("head layout interleave {} does not divide its segment of {} heads: each of the {} units holds the same "
           "heads of every segment",
           interleave, count, interleave);
    }
  }
}

int64_t HeadLayout::begin_of(int64_t head) const {
  if (interleave == 1) return head * head_dim;
  const int64_t unit_heads = num_heads / interleave;
  int64_t first = 0;    // the segment's first head, in segment-by-segment numbering
  int64_t in_unit = 0;  // the segment's first position within a unit
  for (const int64_t count : segment_heads.empty() ? std::vector<int64_t>{num_heads} : segment_heads) {
    const int64_t per_unit = count / interleave;
    if (head < first + count) {
      const int64_t local = head - first;
      return ((local / per_unit) * unit_heads + in_unit + local % per_unit) * head_dim;
    }
    first += count;
    in_unit += per_unit;
  }
  fail("head {} is outside the layout's {} heads", head, num_heads);
}

std::string to_string(ParamRole role) {
  for (const auto& [value, name] : kRoleNames) {
    if (value == role) return name;
  }
  return "?";
}

ParamRole parse_param_role(const std::string& name) {
  for (const auto& [value, known] : kRoleNames) {
    if (name == known) return value;
  }
  fail("unknown parameter role '{}'", name);
}

ParamRole infer_param_role(const std::string& name, const torch::Tensor& tensor) {
  if (tensor.dim() < 2) {
    if (ends_with(name, "bias")) return ParamRole::kBias;
    if (contains(name, "norm") || contains(name, "ln")) return ParamRole::kNorm;
    return ParamRole::kScalar;
  }
  if (contains(name, "wte") || contains(name, "wpe") || contains(name, "embed") ||
      contains(name, "tok_emb") || contains(name, "pos_emb")) {
    return ParamRole::kEmbedding;
  }
  if (contains(name, "lm_head") || name == "output.weight" || name == "head.weight") {
    return ParamRole::kHead;
  }
  return ParamRole::kMatrix;
}

std::vector<TaggedParam> tag_parameters(
    const torch::OrderedDict<std::string, torch::Tensor>& named) {
  std::vector<TaggedParam> tagged;
  for (const auto& item : named) {
    tagged.push_back({item.key(), item.value(), infer_param_role(item.key(), item.value())});
  }
  return tagged;
}

std::vector<torch::Tensor> tensors_of(const std::vector<TaggedParam>& tagged) {
  std::vector<torch::Tensor> tensors;
  for (const auto& p : tagged) tensors.push_back(p.tensor);
  return tensors;
}

torch::OrderedDict<std::string, torch::Tensor> names_of(const std::vector<TaggedParam>& tagged) {
  torch::OrderedDict<std::string, torch::Tensor> named;
  for (const auto& p : tagged) named.insert(p.name, p.tensor);
  return named;
}

std::string to_string(OptimizerChoice choice) {
  return choice == OptimizerChoice::kMuon ? "muon" : "adamw";
}

std::string why_not_muon(const TaggedParam& param) {
  if (param.tensor.dim() < 2) {
    return fmt::format("it has shape {} and Muon takes matrices (or conv kernels and stacks of matrices) only",
                       shape_string(param.tensor.sizes()));
  }
  if (param.exclude_from_muon) return "it is marked exclude_from_muon";
  if (!is_hidden_matrix_role(param.role)) {
    return fmt::format("its role is '{}', which belongs to AdamW", to_string(param.role));
  }
  return {};
}

OptimizerChoice route(const TaggedParam& param) {
  return why_not_muon(param).empty() ? OptimizerChoice::kMuon : OptimizerChoice::kAdamW;
}

}  // namespace muonlab::optim
