#include "muonlab/analysis/loss_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "muonlab/analysis/gnuplot.h"
#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"

namespace fs = std::filesystem;

namespace muonlab::analysis {
namespace {

// What a chart puts on its x axis: a column of the data blocks.
struct XAxis {
  const char* file_suffix;
  const char* label;
  int column;              // 1: step, 2: tokens trained
  const char* tic_format;  // tokens in SI steps: 250k, 1.5M
};
constexpr XAxis kXAxes[] = {{"steps", "step", 1, "%g"}, {"tokens", "tokens trained", 2, "%.1s%c"}};

const std::array<ImageFormat, 2> kLossChartFormats = png_and_svg(1200, 750);

// Tableau 10: distinct on screen and in print; runs beyond ten reuse them.
constexpr const char* kRunColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string data_block_name(const char* curve, size_t run_index) { return fmt::format("${}_{}", curve, run_index + 1); }

bool has_spread(const std::vector<LossPoint>& points) {
  return std::any_of(points.begin(), points.end(), [](const LossPoint& p) { return std::isfinite(p.spread); });
}

// Columns: step, tokens trained, loss, and the spread when the curve has
// one. Gnuplot leaves NaN points out.
std::string data_block(const std::string& name, const std::vector<LossPoint>& points) {
  const bool spread = has_spread(points);
  std::string block = fmt::format("{} << EOD\n", name);
  for (const LossPoint& point : points) {
    block += fmt::format("{} {} {}", gnuplot_number(point.step), gnuplot_number(point.tokens),
                         gnuplot_number(point.loss));
    block += spread ? fmt::format(" {}\n", gnuplot_number(point.spread)) : "\n";
  }
  return block + "EOD\n";
}

std::string data_blocks(const std::vector<RunCurves>& runs) {
  std::string blocks;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (!runs[i].curves.train.empty()) blocks += data_block(data_block_name("train", i), runs[i].curves.train);
    if (!runs[i].curves.validation.empty()) {
      blocks += data_block(data_block_name("validation", i), runs[i].curves.validation);
    }
    if (!runs[i].curves.hellaswag.empty()) {
      blocks += data_block(data_block_name("hellaswag", i), runs[i].curves.hellaswag);
    }
  }
  return blocks;
}

bool any_hellaswag(const std::vector<RunCurves>& runs) {
  return std::any_of(runs.begin(), runs.end(), [](const RunCurves& run) { return !run.curves.hellaswag.empty(); });
}

// The seeds' band (where the curve is a mean), then the curve, in the run's
// colour; the band's entries go first so the lines are drawn over them.
struct CurveStyle {
  const char* with;  // "lines", "linespoints"
  const char* rest;  // after the colour: "linewidth 2"
};

void add_curve(std::vector<std::string>& curves, const std::string& block, const std::vector<LossPoint>& points,
               int x_column, const std::string& colour, const CurveStyle& style, const std::string& title) {
  if (has_spread(points)) {
    curves.push_back(fmt::format(
        "{} using {}:($3-$4):($3+$4) with filledcurves fillcolor rgb {} fillstyle transparent solid 0.2 noborder "
        "notitle",
        block, x_column, colour));
  }
  curves.push_back(fmt::format("{} using {}:3 with {} linecolor rgb {} {} {}", block, x_column, style.with, colour,
                               style.rest, title));
}

std::string joined_plot_command(const std::vector<std::string>& curves) {
  std::string command = "plot ";
  for (size_t i = 0; i < curves.size(); ++i) command += (i == 0 ? "" : ", \\\n     ") + curves[i];
  return command + "\n";
}

// A centred moving average of `window` points (fewer at the ends); NaN
// losses are left out of the average.
std::vector<LossPoint> smoothed(const std::vector<LossPoint>& points, int window) {
  if (window <= 1) return points;
  std::vector<LossPoint> out = points;
  const int64_t half = window / 2, n = static_cast<int64_t>(points.size());
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0;
    int count = 0;
    for (int64_t j = std::max<int64_t>(0, i - half); j <= std::min(n - 1, i + half); ++j) {
      if (std::isfinite(points[j].loss)) sum += points[j].loss, ++count;
    }
    out[i].loss = count > 0 ? sum / count : std::numeric_limits<double>::quiet_NaN();
  }
  return out;
}

// One `plot` command over every run: a solid line for train loss and a
// dashed line with points for validation loss, both in the run's colour;
// the legend names each run once, and two grey entries say which style is
// which.
std::string plot_command(const std::vector<RunCurves>& runs, const XAxis& axis) {
  std::vector<std::string> curves;
  bool any_train = false, any_validation = false, any_band = false;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string colour = gnuplot_string(kRunColours[i % std::size(kRunColours)]);
    const std::string title = "title " + gnuplot_string(runs[i].label);
    const bool has_train = !runs[i].curves.train.empty();
    any_train |= has_train;
    any_validation |= !runs[i].curves.validation.empty();
    any_band |= has_spread(runs[i].curves.train);
    if (has_train) {
      add_curve(curves, data_block_name("train", i), runs[i].curves.train, axis.column, colour,
                {"lines", "linewidth 2"}, title);
    }
    if (!runs[i].curves.validation.empty()) {
      curves.push_back(fmt::format(
          "{} using {}:3 with linespoints linecolor rgb {} linewidth 2 dashtype 2 pointtype 7 pointsize 1.2 {}",
          data_block_name("validation", i), axis.column, colour, has_train ? "notitle" : title));
    }
  }
  if (any_train && any_validation) {
    curves.push_back(fmt::format("NaN with lines linecolor rgb '#555555' linewidth 2 title {}",
                                 gnuplot_string(any_band ? "train (band: ± std over seeds)" : "train")));
    curves.push_back(
        "NaN with linespoints linecolor rgb '#555555' linewidth 2 dashtype 2 pointtype 7 title 'validation'");
  }
  return joined_plot_command(curves);
}

// Every finite loss of every run.
template <typename Visit>
void for_each_loss(const std::vector<RunCurves>& runs, Visit visit) {
  for (const RunCurves& run : runs) {
    for (const auto* curve : {&run.curves.train, &run.curves.validation}) {
      for (const LossPoint& point : *curve) {
        if (std::isfinite(point.loss)) visit(point);
      }
    }
  }
}

// Losses fall fastest early on; when they span a factor of 10 or more a log
// scale keeps the later, small differences between runs readable.
bool losses_span_a_decade(const std::vector<RunCurves>& runs) {
  double lowest = std::numeric_limits<double>::infinity(), highest = 0;
  bool positive = true;
  for_each_loss(runs, [&](const LossPoint& point) {
    positive = positive && point.loss > 0;
    lowest = std::min(lowest, point.loss);
    highest = std::max(highest, point.loss);
  });
  return positive && highest >= 10 * lowest;
}

// From just below the lowest loss to just above the highest after the first
// 5% of steps, so the early, steep fall does not flatten the comparison.
std::string y_range(const std::vector<RunCurves>& runs) {
  double last_step = 0;
  for_each_loss(runs, [&](const LossPoint& point) { last_step = std::max(last_step, point.step); });
  double lowest = std::numeric_limits<double>::infinity(), highest = -lowest;
  for_each_loss(runs, [&](const LossPoint& point) {
    lowest = std::min(lowest, point.loss);
    if (point.step >= 0.05 * last_step) highest = std::max(highest, point.loss);
  });
  if (!(highest > lowest)) return "";
  const double margin = 0.05 * (highest - lowest);
  return fmt::format("set yrange [{}:{}]\n", gnuplot_number(lowest - margin), gnuplot_number(highest + margin));
}

std::string common_settings(const std::vector<RunCurves>& runs, const LossPlotOptions& options) {
  std::string settings = gnuplot_png_terminal_choice() +
                         "set grid\n"
                         "set key outside right top vertical Left reverse samplen 3\n"
                         "set ylabel 'loss'\n";
  if (!options.title.empty()) settings += "set title " + gnuplot_string(options.title) + "\n";
  const bool log_y =
      options.log_y == LogScale::kOn || (options.log_y == LogScale::kAuto && losses_span_a_decade(runs));
  settings += log_y ? "set logscale y\n" : y_range(runs);
  return settings;
}

// OUT/NAME_vs_steps.png and so on, absolute so the script runs from anywhere.
fs::path plot_folder(const LossPlotOptions& options) {
  if (options.name.empty() || options.name.find('/') != std::string::npos) {
    fail("plot name '{}' must be a file name without a folder", options.name);
  }
  // gnuplot strings cannot hold a line break (gnuplot_string replaces it).
  if (options.out_dir.find_first_of("\r\n") != std::string::npos) {
    fail("plot folder '{}' has a line break in its name, which gnuplot cannot write to", options.out_dir);
  }
  return fs::absolute(options.out_dir).lexically_normal();
}

std::string figure_path(const LossPlotOptions& options, const XAxis& axis, const ImageFormat& format) {
  return (plot_folder(options) / fmt::format("{}_vs_{}.{}", options.name, axis.file_suffix, format.extension))
      .string();
}

// Both images of one chart: the plot command once, then replot per format.
std::string figure_commands(const std::vector<RunCurves>& runs, const XAxis& axis, const LossPlotOptions& options) {
  std::string commands = fmt::format("\nset xlabel {}\nset format x {}\n", gnuplot_string(axis.label),
                                     gnuplot_string(axis.tic_format));
  for (const ImageFormat& format : kLossChartFormats) {
    commands += fmt::format("set terminal {}\nset output {}\n", format.terminal,
                            gnuplot_string(figure_path(options, axis, format)));
    commands += &format == &kLossChartFormats[0] ? plot_command(runs, axis) : "replot\n";
  }
  return commands + "set output\n";
}

// HellaSwag acc_norm by tokens trained: a line with points for each run that
// scored it, in the run's colour, on a linear axis of its own.
std::string hellaswag_commands(const std::vector<RunCurves>& runs, const LossPlotOptions& options) {
  std::vector<std::string> curves;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (runs[i].curves.hellaswag.empty()) continue;
    add_curve(curves, data_block_name("hellaswag", i), runs[i].curves.hellaswag, 2,
              gnuplot_string(kRunColours[i % std::size(kRunColours)]),
              {"linespoints", "linewidth 2 pointtype 7 pointsize 1.2"}, "title " + gnuplot_string(runs[i].label));
  }
  std::string commands =
      "\nunset logscale y\nset autoscale y\nset ylabel 'HellaSwag acc_norm (fraction of items right)'\n"
      "set xlabel 'tokens trained'\nset format x '%.1s%c'\n";
  const std::vector<std::string> figures = hellaswag_plot_figures(options);
  for (size_t f = 0; f < kLossChartFormats.size(); ++f) {
    commands += fmt::format("set terminal {}\nset output {}\n", kLossChartFormats[f].terminal,
                            gnuplot_string(figures[f]));
    commands += f == 0 ? joined_plot_command(curves) : "replot\n";
  }
  return commands + "set output\n";
}

void check_plottable(const std::vector<RunCurves>& runs, const LossPlotOptions& options) {
  if (runs.empty()) fail("no runs to plot");
  if (options.smooth < 1) fail("smoothing window {}: expected 1 (none) or more logged points", options.smooth);
  for (const RunCurves& run : runs) {
    if (run.curves.train.empty() && run.curves.validation.empty()) {
      fail("run '{}' has no train or validation loss to plot yet", run.label);
    }
  }
}

}  // namespace

LossPlotFiles loss_plot_files(const LossPlotOptions& options) {
  LossPlotFiles files;
  files.script = (plot_folder(options) / (options.name + ".gp")).string();
  for (const XAxis& axis : kXAxes) {
    for (const ImageFormat& format : kLossChartFormats) files.figures.push_back(figure_path(options, axis, format));
  }
  return files;
}

std::vector<std::string> hellaswag_plot_figures(const LossPlotOptions& options) {
  std::vector<std::string> figures;
  for (const ImageFormat& format : kLossChartFormats) {
    figures.push_back((plot_folder(options) / fmt::format("{}_hellaswag_vs_tokens.{}", options.name, format.extension))
                          .string());
  }
  return figures;
}

std::string loss_plot_script(const std::vector<RunCurves>& runs, const LossPlotOptions& options) {
  check_plottable(runs, options);
  std::string script = fmt::format(
      "# Written by muonlab plot: train loss (lines) and validation loss (dashed,\n"
      "# with points) of {} run(s), by step and by tokens trained, and their\n"
      "# HellaSwag accuracy where they scored it. Edit the style and rerun:\n"
      "# gnuplot {}\n"
      "# Data blocks: one per run and curve; columns step, tokens trained, value.\n",
      runs.size(), loss_plot_files(options).script);
  std::vector<RunCurves> drawn = runs;
  for (RunCurves& run : drawn) run.curves.train = smoothed(run.curves.train, options.smooth);
  script += data_blocks(drawn) + "\n" + common_settings(drawn, options);
  for (const XAxis& axis : kXAxes) script += figure_commands(drawn, axis, options);
  if (any_hellaswag(drawn)) script += hellaswag_commands(drawn, options);
  return script;
}

LossPlotResult plot_losses(const std::vector<RunCurves>& runs, const LossPlotOptions& options) {
  LossPlotResult result;
  const std::string script = loss_plot_script(runs, options);
  result.files = loss_plot_files(options);
  if (any_hellaswag(runs)) {
    for (const std::string& figure : hellaswag_plot_figures(options)) result.files.figures.push_back(figure);
  }
  create_plot_folder(options.out_dir);
  write_text_file_atomically(result.files.script, script);
  result.gnuplot_output = run_gnuplot(result.files.script);
  return result;
}

}  // namespace muonlab::analysis
