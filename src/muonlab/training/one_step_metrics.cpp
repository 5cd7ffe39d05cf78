#include "muonlab/training/one_step_metrics.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "muonlab/analysis/one_step_diagnostics.h"
#include "muonlab/optimizers/head_groups.h"

namespace muonlab::training {
namespace {

// `param`'s blocks of `group_size` heads by the run's grouping rule and
// projections.
std::optional<optim::HeadBlocks> diagnostic_blocks(const optim::TaggedParam& param,
                                                   const OptimizerSettings& settings, int64_t group_size,
                                                   int64_t step) {
  const auto rule = optim::parse_grouping_rule(settings.grouping);
  std::optional<torch::Generator> generator;
  if (rule == optim::GroupingRule::kRandom) {
    generator = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(step));
  }
  return optim::plan_param_head_blocks(param, optim::parse_grouped_projections(settings.grouped), group_size, rule,
                                       generator);
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
  for (const int64_t group_size : group_sizes) {
    const std::string prefix = fmt::format("onestep_g{}_", group_size);
    analysis::OneStepDiagnostics total;
    int64_t measured = 0;
    for (const auto& param : params) {
      const auto& grad = param.tensor.grad();
      if (!grad.defined() || optim::route(param) != optim::OptimizerChoice::kMuon) continue;
      const auto blocks = diagnostic_blocks(param, settings, group_size, step);
      if (!blocks) continue;
      const torch::Tensor G = grad.detach();
      const auto terms =
          analysis::one_step_diagnostics(G, optim::gather_head_blocks(G, *param.heads, *blocks), ns_config);
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
