// `muonlab sweep SPEC.toml [--out DIR] [--parallel N] [--set KEY=VALUE]... [--list | --check]`: runs
// a grid of training runs (sweep_spec.h for the spec, sweep_runner.h for how
// they run and resume), lists them with their states (sweep_status.h), or
// checks that each can be set up (training::plan_run).
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/count_text.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/cli/number_checks.h"
#include "muonlab/core/errors.h"
#include "muonlab/sweep/sweep_runner.h"
#include "muonlab/sweep/sweep_status.h"
#include "muonlab/training/train_config.h"
#include "muonlab/training/trainer.h"

namespace muonlab::cli {
namespace {

struct SweepArgs {
  std::string spec;
  std::string out_dir;
  int64_t parallel = 0;  // 0: the spec's [sweep] parallel
  bool list = false;
  bool check = false;  // --check: plan every run, run none
  std::vector<std::string> overrides;
};

// "4 variants (12 learning rates in all) x run.seed (5 values)": how the runs
// come about, so that a count that surprises can be traced to its factor.
std::string describe_grid(const sweep::SweepSpec& spec) {
  size_t learning_rates = 0;
  for (const auto& variant : spec.variants) learning_rates += std::max<size_t>(variant.lrs.size(), 1);
  std::string grid = fmt::format("{} variant{} ({} learning rate{} in all)", spec.variants.size(),
                                 spec.variants.size() == 1 ? "" : "s", learning_rates, learning_rates == 1 ? "" : "s");
  for (const auto& axis : spec.axes) grid += fmt::format(" x {} ({} values)", fmt::join(axis.keys, " + "), axis.points.size());
  return grid;
}

// One line per run, its id and state aligned, and the count of each state.
void print_statuses(const std::vector<sweep::RunStatus>& statuses, const std::string& out_dir) {
  size_t id_width = 0;
  for (const auto& status : statuses) id_width = std::max(id_width, status.id.size());
  for (const auto& status : statuses) {
    std::string line = fmt::format("  {:<{}}  {:<11}  {}", status.id, id_width, status.state, status.detail);
    while (line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
  std::cout << fmt::format("{}{}\n", sweep::count_states(statuses),
                           std::filesystem::exists(out_dir) ? "" : fmt::format(" ({} does not exist yet)", out_dir));
}

// --check: every run's plan (training::plan_run: its model, optimizer and
// shards read and checked as training would), a line each; the first run
// that cannot be set up fails naming it. Nothing is written.
void check_sweep(const sweep::SweepSpec& spec, const std::vector<sweep::SweepRun>& runs) {
  size_t id_width = 0;
  for (const auto& run : runs) id_width = std::max(id_width, run.id.size());
  for (const auto& run : runs) {
    training::RunPlan plan;
    try {
      plan = training::plan_run(training::load_train_config(spec.base, run.overrides));
    } catch (const Error& error) {
      fail("{}: run '{}': {}", spec.path, run.id, error.what());
    }
    std::cout << fmt::format("  {:<{}}  {} parameters ({} in Muon), {} tokens, {:.3g} epochs\n", run.id, id_width,
                             with_thousands(plan.parameters), with_thousands(plan.muon_parameters),
                             with_thousands(plan.tokens()), plan.epochs());
  }
  std::cout << fmt::format("{} runs ready to train; nothing written\n", runs.size());
}

void run_sweep_command(const SweepArgs& args) {
  const sweep::SweepSpec spec = sweep::load_sweep_spec(args.spec, args.overrides);
  const auto runs = sweep::expand_sweep(spec);
  const std::string out_dir = args.out_dir.empty() ? "sweeps/" + spec.name : args.out_dir;
  std::cout << fmt::format("sweep '{}': {} runs: {}; base {}, into {}\n", spec.name, runs.size(), describe_grid(spec),
                           spec.base, out_dir);
  if (args.list) {
    print_statuses(sweep::sweep_status(runs, out_dir), out_dir);
    return;
  }
  if (args.check) return check_sweep(spec, runs);
  sweep::SweepOptions options;
  options.out_dir = out_dir;
  options.parallel = args.parallel;
  const auto summary = sweep::run_sweep(spec, options, std::cout);
  std::cout << fmt::format("{} runs: {} done before, {} finished now, {} failed; index {}\n", summary.runs,
                           summary.already_done, summary.finished, summary.failed, summary.index_path);
  if (summary.failed > 0) fail("{} run(s) failed; rerun the same command to retry them", summary.failed);
}

}  // namespace

void register_sweep(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  auto* command = app.add_subcommand("sweep", "Run a grid of training runs (variants x lr x axes), resumably");
  add_examples(*command, {
                    "muonlab sweep experiments/headline-adamw-vs-muon.toml",
                    "muonlab sweep experiments/3-muon2.toml --list",
                    "muonlab sweep experiments/3-muon2.toml --check",
                    "muonlab sweep experiments/3-muon2.toml --set run.device=\"cuda\" --parallel 2"});
  command->add_option("spec", args->spec, "Sweep spec (TOML: [sweep], [axes], [[variant]])")->required();
  command->add_option("--out", args->out_dir, "Sweep folder (default: sweeps/NAME)");
  command->add_option("--parallel", args->parallel, "Runs at once (default: the spec's [sweep] parallel)")
      ->check(kPositiveCount)
      ->default_str("");
  command->add_option("--set", args->overrides,
                      "KEY=VALUE for every run, after the spec's [sweep] set (e.g. run.device=\"cuda\")");
  auto* list = command->add_flag("--list", args->list,
                                 "List the runs and the state of each (done, running, stopped, failed, not started), "
                                 "and stop");
  command->add_flag("--check", args->check,
                    "Read and check every run's model, optimizer and data as training would, print each run's "
                    "parameters, tokens and epochs, and stop without writing anything")
      ->excludes(list);
  command->callback([args] { run_sweep_command(*args); });
}

}  // namespace muonlab::cli
