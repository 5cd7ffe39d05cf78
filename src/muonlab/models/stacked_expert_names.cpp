#include "muonlab/models/stacked_expert_names.h"

#include <fmt/format.h>

#include <cctype>
#include <map>
#include <optional>
#include <string_view>

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::models {

namespace {

constexpr std::string_view kPerExpert = ".expert_";
constexpr std::string_view kStacked = ".experts.";

// "P.expert_<e>.R" in its parts.
struct PerExpertName {
  std::string prefix;  // "P"
  std::string rest;    // ".R"
  int64_t expert = 0;

  std::string stacked() const { return prefix + ".experts" + rest; }
  std::string of_expert(int64_t e) const { return fmt::format("{}{}{}{}", prefix, kPerExpert, e, rest); }
};

// "P.expert_<digits>.R" -> {P, .R, digits}; anything else: nullopt.
std::optional<PerExpertName> parse_per_expert_name(const std::string& name) {
  const size_t at = name.find(kPerExpert);
  if (at == std::string::npos) return std::nullopt;
  const size_t digits = at + kPerExpert.size();
  size_t end = digits;
  while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
  if (end == digits || end - digits > 9 || end == name.size() || name[end] != '.') return std::nullopt;
  return PerExpertName{name.substr(0, at), name.substr(end), std::stoll(name.substr(digits, end - digits))};
}

struct ExpertSet {
  PerExpertName first;                        // its first name in the file
  size_t first_position = 0;                  // where the stack goes
  std::map<int64_t, torch::Tensor> by_expert;
};

torch::Tensor stack_set(const ExpertSet& set, const std::string& source) {
  std::vector<torch::Tensor> slices;
  for (const auto& [expert, tensor] : set.by_expert) {
    const auto expected = static_cast<int64_t>(slices.size());
    if (expert != expected) {
      fail("{} holds {} but not {}: the per-expert tensors of a MoE layer must number 0 to E-1", source,
           set.first.of_expert(expert), set.first.of_expert(expected));
    }
    if (!slices.empty() && tensor.sizes() != slices.front().sizes()) {
      fail("{}: {} has shape {}, expert 0's is {}", source, set.first.of_expert(expert), shape_string(tensor.sizes()),
           shape_string(slices.front().sizes()));
    }
    slices.push_back(tensor);
  }
  return torch::stack(slices);
}

}  // namespace

int64_t stack_per_expert_tensors(NamedTensors& tensors, const std::string& source) {
  std::map<std::string, ExpertSet> sets;
  std::vector<bool> per_expert(tensors.size(), false);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto parsed = parse_per_expert_name(tensors[i].first);
    if (!parsed) continue;
    auto [it, fresh] = sets.try_emplace(parsed->stacked());
    if (fresh) it->second = {*parsed, i, {}};
    if (!it->second.by_expert.emplace(parsed->expert, tensors[i].second).second) {
      fail("{} holds {} twice", source, tensors[i].first);
    }
    per_expert[i] = true;
  }
  if (sets.empty()) return 0;

  std::map<size_t, std::pair<std::string, torch::Tensor>> stacks;  // by first position
  for (const auto& [name, set] : sets) stacks.emplace(set.first_position, std::make_pair(name, stack_set(set, source)));
  NamedTensors rewritten;
  int64_t stacked = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (const auto found = stacks.find(i); found != stacks.end()) rewritten.push_back(found->second);
    if (per_expert[i]) {
      ++stacked;
    } else {
      rewritten.push_back(std::move(tensors[i]));
    }
  }
  tensors = std::move(rewritten);
  return stacked;
}

std::vector<std::string> per_expert_names(const std::string& name, int64_t num_experts) {
  const size_t at = name.find(kStacked);
  if (at == std::string::npos) return {};
  // The rest keeps its leading '.': "P.experts.R" -> {P, ".R"}.
  const PerExpertName parts{name.substr(0, at), name.substr(at + kStacked.size() - 1)};
  std::vector<std::string> names;
  for (int64_t e = 0; e < num_experts; ++e) names.push_back(parts.of_expert(e));
  return names;
}

}  // namespace muonlab::models
