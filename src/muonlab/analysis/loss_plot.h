// Loss curves of several runs on shared charts, drawn by gnuplot: train loss
// as a line and validation loss as a dashed line with points in the same
// colour, one colour per run and one legend entry per run, outside the plot
// area; the y range leaves out the first 5% of training, where the losses
// are far above the differences a comparison is about. One chart by step and
// one by tokens trained, each as PNG and SVG; where runs scored HellaSwag, a
// third of its accuracy by tokens trained.
#pragma once

#include <string>
#include <vector>

#include "muonlab/analysis/loss_curves.h"

namespace muonlab::analysis {

struct RunCurves {
  std::string label;  // the legend entry (muonlab plot: the run's folder name)
  LossCurves curves;
};

enum class LogScale { kAuto, kOn, kOff };

struct LossPlotOptions {
  std::string out_dir = ".";  // created if missing
  std::string name = "loss";  // every file name starts with it
  std::string title;          // above the chart; empty: none
  // kAuto: a log y axis where the losses span a factor of 10.
  LogScale log_y = LogScale::kAuto;
  // Train loss as a centred moving average over this many logged points
  // (1: as logged); validation points are drawn as measured.
  int smooth = 1;
};

struct LossPlotFiles {
  std::string script;                // OUT/NAME.gp, to restyle and rerun with gnuplot
  // OUT/NAME_vs_steps.{png,svg}, OUT/NAME_vs_tokens.{png,svg}; plot_losses
  // adds the HellaSwag chart's where it draws one.
  std::vector<std::string> figures;
};

// Where the plot goes, as absolute paths. Fails when the name is not a plain
// file name.
LossPlotFiles loss_plot_files(const LossPlotOptions& options);

// Where runs scored HellaSwag (run.hellaswag), one more chart: its acc_norm
// by tokens trained, OUT/NAME_hellaswag_vs_tokens.{png,svg}.
std::vector<std::string> hellaswag_plot_figures(const LossPlotOptions& options);

// The gnuplot script that draws `runs` into loss_plot_files(options).figures,
// with the data inline. Fails when there are no runs or a run has no loss.
std::string loss_plot_script(const std::vector<RunCurves>& runs, const LossPlotOptions& options);

struct LossPlotResult {
  LossPlotFiles files;
  std::string gnuplot_output;  // warnings gnuplot printed, usually empty
};

// Writes the script and runs gnuplot on it. Fails when gnuplot is not on
// PATH, or when it fails, with what it printed.
LossPlotResult plot_losses(const std::vector<RunCurves>& runs, const LossPlotOptions& options);

}  // namespace muonlab::analysis
