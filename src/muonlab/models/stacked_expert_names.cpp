#include "muonlab/models/stacked_expert_names.h"

#include <cctype>
#include <map>
#include <optional>
#include <string_view>

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::models {

namespace {

constexpr std::string_view kPerExpert = ".expert_";

struct PerExpertName {
  std::string stacked_name;  // "P.experts.R"
  int64_t expert = 0;
};

// "P.expert_<digits>.R" -> {"P.experts.R", digits}; anything else: nullopt.
std::optional<PerExpertName> parse_per_expert_name(const std::string& name) {
  const size_t at = name.find(kPerExpert);
  if (at == std::string::npos) return std::nullopt;
  const size_t digits = at + kPerExpert.size();
  size_t end = digits;
  while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
  if (end == digits || end - digits > 9 || end == name.size() || name[end] != '.') return std::nullopt;
  return PerExpertName{name.substr(0, at) + ".experts" + name.substr(end), std::stoll(name.substr(digits, end - digits))};
}

struct ExpertSet {
  size_t first_position = 0;                  // where the stack goes
  std::map<int64_t, torch::Tensor> by_expert;
};

torch::Tensor stack_set(const std::string& stacked_name, const ExpertSet& set, const std::string& source) {
  std::vector<torch::Tensor> slices;
  const std::string prefix = stacked_name.substr(0, stacked_name.find(".experts."));
  const std::string rest = stacked_name.substr(prefix.size() + std::string(".experts").size());
  for (const auto& [expert, tensor] : set.by_expert) {
    const auto expected = static_cast<int64_t>(slices.size());
    if (expert != expected) {
      fail("{} holds {}{}{}{} but not {}{}{}{}: the per-expert tensors of a MoE layer must number 0 to E-1", source,
           prefix, kPerExpert, expert, rest, prefix, kPerExpert, expected, rest);
    }
    if (!slices.empty() && tensor.sizes() != slices.front().sizes()) {
      fail("{}: {}{}{}{} has shape {}, expert 0's is {}", source, prefix, kPerExpert, expert, rest,
           shape_string(tensor.sizes()), shape_string(slices.front().sizes()));
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
    auto [it, fresh] = sets.try_emplace(parsed->stacked_name);
    if (fresh) it->second.first_position = i;
    if (!it->second.by_expert.emplace(parsed->expert, tensors[i].second).second) {
      fail("{} holds {} twice", source, tensors[i].first);
    }
    per_expert[i] = true;
  }
  if (sets.empty()) return 0;

  std::map<size_t, std::pair<std::string, torch::Tensor>> stacks;  // by first position
  for (const auto& [name, set] : sets) stacks.emplace(set.first_position, std::make_pair(name, stack_set(name, set, source)));
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

}  // namespace muonlab::models
