// `muonlab plot RUN_DIR... [--out DIR] [--name loss] [--title T] [--log-y |
// --linear-y] [--smooth N] [--csv]`: train and
// validation loss of one or more runs on shared charts, by step and by tokens
// trained, as PNG and SVG (drawn by gnuplot), each run labelled by its folder.
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

#include "muonlab/analysis/loss_plot.h"
#include "muonlab/cli/commands.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/cli/number_checks.h"
#include "muonlab/core/errors.h"
#include "muonlab/training/metrics_csv.h"
#include "muonlab/training/read_loss_curves.h"

namespace fs = std::filesystem;

namespace muonlab::cli {
namespace {

struct PlotArgs {
  std::vector<std::string> run_dirs;
  std::string out_dir;  // empty: the first run's folder
  std::string name = "loss";
  std::string title;
  bool log_y = false, linear_y = false;
  int smooth = 1;
  bool csv = false;
};

// "runs/a/" and "runs/a" both name run "a".
std::string folder_name(const std::string& dir) {
  fs::path path = fs::path(dir).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();
  if (path.empty() || path == ".") path = fs::current_path();
  return path.filename().string();
}

// Each run's folder name, or the folder as given where two runs share a name
// (runs/a/seed1 and runs/b/seed1), so every legend entry tells them apart.
std::vector<std::string> run_labels(const std::vector<std::string>& run_dirs) {
  std::map<std::string, int> uses;
  for (const std::string& dir : run_dirs) ++uses[folder_name(dir)];
  std::vector<std::string> labels;
  for (const std::string& dir : run_dirs) labels.push_back(uses[folder_name(dir)] > 1 ? dir : folder_name(dir));
  return labels;
}

std::string metrics_path(const std::string& run_dir) {
  if (!fs::is_directory(run_dir)) fail("run folder '{}' does not exist", run_dir);
  const fs::path metrics = fs::path(run_dir) / "metrics.jsonl";
  if (!fs::exists(metrics) && fs::exists(fs::path(run_dir) / "sweep.json")) {
    fail("'{}' is a sweep folder, not a run: give its runs ('{}/runs/VARIANT/...'), or chart them all with "
         "`muonlab report {}`",
         run_dir, run_dir, run_dir);
  }
  if (!fs::exists(metrics)) fail("'{}' holds no metrics.jsonl: expected a run folder written by muonlab train", run_dir);
  return metrics.string();
}

void run_plot(const PlotArgs& args) {
  const std::vector<std::string> labels = run_labels(args.run_dirs);
  std::vector<analysis::RunCurves> runs;
  for (size_t i = 0; i < args.run_dirs.size(); ++i) {
    const std::string metrics = metrics_path(args.run_dirs[i]);
    runs.push_back({labels[i], training::read_loss_curves(metrics)});
    if (args.csv) {
      const std::string csv = (fs::path(args.run_dirs[i]) / "metrics.csv").string();
      training::write_metrics_csv(metrics, csv);
      std::cout << "wrote " << csv << "\n";
    }
  }
  analysis::LossPlotOptions options;
  options.out_dir = args.out_dir.empty() ? args.run_dirs.front() : args.out_dir;
  options.name = args.name;
  options.title = args.title;
  options.log_y = args.log_y ? analysis::LogScale::kOn : args.linear_y ? analysis::LogScale::kOff : analysis::LogScale::kAuto;
  options.smooth = args.smooth;
  const analysis::LossPlotResult result = analysis::plot_losses(runs, options);
  std::cerr << result.gnuplot_output;
  for (const std::string& figure : result.files.figures) std::cout << "wrote " << figure << "\n";
  std::cout << "gnuplot script: " << result.files.script << "\n";
}

}  // namespace

void register_plot(CLI::App& app) {
  auto args = std::make_shared<PlotArgs>();
  auto* plot = app.add_subcommand("plot", "Chart train and validation loss of runs by step and by tokens (gnuplot)");
  add_examples(*plot, {
                    "muonlab plot runs/cpu-small",
                    "muonlab plot runs/a runs/b --out charts --title \"Muon vs AdamW\" --log-y --smooth 10"});
  plot->add_option("run_dirs", args->run_dirs, "Run folders (each with the metrics.jsonl muonlab train writes)")
      ->required();
  plot->add_option("--out", args->out_dir, "Folder for the charts (default: the first run's folder)");
  plot->add_option("--name", args->name, "File names start with this: NAME_vs_steps.png ...")->capture_default_str();
  plot->add_option("--title", args->title, "Title above the charts (default: none)");
  auto* log_y = plot->add_flag("--log-y", args->log_y, "Log-scale y axis (default: only where the losses span 10x)");
  plot->add_flag("--linear-y", args->linear_y, "Linear y axis always")->excludes(log_y);
  plot->add_option("--smooth", args->smooth, "Train loss as a moving average over this many logged steps (1: none)")
      ->check(kPositiveCount);
  plot->add_flag("--csv", args->csv, "Also write each run's metrics as RUN_DIR/metrics.csv");
  plot->callback([args] { run_plot(*args); });
}

}  // namespace muonlab::cli
