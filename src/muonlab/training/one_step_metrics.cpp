#include "muonlab/training/one_step_metrics.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "muonlab/analysis/one_step_diagnostics.h"
#include "muonlab/optimizers/head_groups.h"

namespace muonlab::training {
namespace {

// Random groups come from a generator seeded with the step, never from the
// optimizer's: measuring does not change the run.
std::optional<torch::Generator> diagnostic_draws(optim::GroupingRule rule, int64_t step) {
  if (rule != optim::GroupingRule::kRandom) return std::nullopt;
  return at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(step));
}

}  // namespace

std::vector<int64_t> one_step_group_sizes(const TrainConfig& config) {
  if (!config.run.one_step_group_sizes.empty()) return config.run.one_step_group_sizes;
  return {config.optimizer.group_size > 0 ? config.optimizer.group_size : 1};
}

std::vector<std::pair<std::string, double>> one_step_metrics(const std::vector<optim::TaggedParam>& params,
                                                              const OptimizerSettings& settings,
                                                              const std::vector<int64_t>& group_sizes,
                                                              const optim::NewtonSchulzConfig& ns_config,
                                                              int64_t step) {
  std::vector<std::pair<std::string, double>> metrics;
  if (!is_muon_variant(settings.name)) return metrics;
  const auto rule = optim::parse_grouping_rule(settings.grouping);
  const auto projections = optim::parse_grouped_projections(settings.grouped);
  for (const int64_t group_size : group_sizes) {
    const std::string prefix = fmt::format("onestep_g{}_", group_size);
    analysis::OneStepDiagnostics total;
    int64_t measured = 0;
    for (const auto& param : params) {
      const auto& grad = param.tensor.grad();
      if (!grad.defined() || optim::route(param) != optim::OptimizerChoice::kMuon) continue;
      const auto measured_terms = analysis::grouped_one_step_diagnostics(
          param, grad.detach(), projections, group_size, rule, diagnostic_draws(rule, step), ns_config);
      if (!measured_terms) continue;
      const auto& terms = *measured_terms;
      metrics.emplace_back(prefix + "gain_ns." + param.name, terms.newton_schulz.gain);
      metrics.emplace_back(prefix + "cost_ns." + param.name, terms.newton_schulz.cost);
      metrics.emplace_back(prefix + "gain_exact." + param.name, terms.exact.gain);
      metrics.emplace_back(prefix + "cost_exact." + param.name, terms.exact.cost);
      total.newton_schulz.gain += terms.newton_schulz.gain;
      total.newton_schulz.cost += terms.newton_schulz.cost;
      total.exact.gain += terms.exact.gain;
      total.exact.cost += terms.exact.cost;
      ++measured;
    }
    if (measured == 0) continue;
    metrics.emplace_back(prefix + "gain_ns", total.newton_schulz.gain);
    metrics.emplace_back(prefix + "cost_ns", total.newton_schulz.cost);
    metrics.emplace_back(prefix + "gain_exact", total.exact.gain);
    metrics.emplace_back(prefix + "cost_exact", total.exact.cost);
  }
  return metrics;
}

}  // namespace muonlab::training
