#include "muonlab/analysis/evaluation_plot.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "muonlab/analysis/gnuplot.h"
#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"

namespace fs = std::filesystem;

namespace muonlab::analysis {
namespace {

EvaluationPlotFiles files_of(const EvaluationPlotOptions& options) {
  if (options.name.empty() || options.name.find('/') != std::string::npos) {
    fail("plot name '{}' must be a file name without a folder", options.name);
  }
  const fs::path folder = fs::absolute(options.out_dir).lexically_normal();
  return {(folder / (options.name + ".gp")).string(),
          {(folder / (options.name + ".png")).string(), (folder / (options.name + ".svg")).string()}};
}

std::set<double> evaluation_steps(const std::vector<VariantEvaluations>& variants) {
  std::set<double> steps;
  for (const auto& v : variants) {
    for (const auto& [step, loss] : v.loss_at_step) steps.insert(step);
  }
  return steps;
}

// A text column of a gnuplot data block: double quotes keep spaces inside
// one column (and cannot be escaped there, so any become single quotes).
std::string data_label(std::string text) {
  for (char& c : text) c = c == '"' ? '\'' : c;
  return "\"" + text + "\"";
}

// Columns: index, variant name, then the loss at each evaluation step.
std::string data_block(const std::vector<VariantEvaluations>& variants, const std::set<double>& steps) {
  std::string block = "$evaluations << EOD\nindex variant";
  for (const double step : steps) block += " " + data_label(fmt::format("step {}", step));
  block += "\n";
  for (size_t i = 0; i < variants.size(); ++i) {
    block += fmt::format("{} {}", i, data_label(variants[i].variant));
    for (const double step : steps) {
      const auto it = variants[i].loss_at_step.find(step);
      block += " " + gnuplot_number(it == variants[i].loss_at_step.end() ? NAN : it->second);
    }
    block += "\n";
  }
  return block + "EOD\n";
}

}  // namespace

std::string evaluation_plot_script(const std::vector<VariantEvaluations>& variants,
                                   const EvaluationPlotOptions& options) {
  if (variants.empty()) fail("no variants to plot");
  const std::set<double> steps = evaluation_steps(variants);
  if (steps.empty()) fail("no evaluations to plot: the runs logged no validation loss along the way");
  const EvaluationPlotFiles files = files_of(options);
  std::string script = fmt::format(
      "# Written by muonlab report: validation loss of each variant (x) at each\n"
      "# evaluation step (one line each). Edit the style and rerun: gnuplot {}\n",
      files.script);
  script += data_block(variants, steps) + "\n" + gnuplot_png_terminal_choice();
  script += "set grid\nset key outside right\nset xtics rotate by -35\nset ylabel 'validation loss (mean over seeds)'\n";
  script += fmt::format("set xrange [-0.5:{}]\n", static_cast<double>(variants.size()) - 0.5);
  if (!options.title.empty()) script += "set title " + gnuplot_string(options.title) + "\n";
  // Later evaluations drawn darker: the late ranking is the one that counts at the end.
  const std::string plot = fmt::format(
      "plot for [i=3:{}] $evaluations using 1:i:xtic(2) with linespoints linewidth 2 pointtype 7 "
      "linecolor palette frac (i - 2.0) / {} title columnheader(i)\n",
      steps.size() + 2, steps.size());
  script += "set palette defined (0 '#c6dbef', 1 '#08306b')\nunset colorbox\n";
  script += fmt::format("set terminal @png_terminal size 1000,600 noenhanced\nset output {}\n{}",
                        gnuplot_string(files.figures[0]), plot);
  script += fmt::format("set terminal svg size 1000,600 noenhanced background '#ffffff'\nset output {}\nreplot\n",
                        gnuplot_string(files.figures[1]));
  return script + "set output\n";
}

EvaluationPlotFiles plot_evaluations(const std::vector<VariantEvaluations>& variants,
                                     const EvaluationPlotOptions& options) {
  const std::string script = evaluation_plot_script(variants, options);
  const EvaluationPlotFiles files = files_of(options);
  create_plot_folder(options.out_dir);
  write_text_file_atomically(files.script, script);
  run_gnuplot(files.script);
  return files;
}

}  // namespace muonlab::analysis
