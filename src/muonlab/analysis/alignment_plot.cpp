#include "muonlab/analysis/alignment_plot.h"

#include <fmt/format.h>

#include <filesystem>

#include "muonlab/analysis/gnuplot.h"
#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"

namespace fs = std::filesystem;

namespace muonlab::analysis {
namespace {

// Muon blue and Muon² orange (Tableau 10), with their light tints for the
// per-matrix lines, so the means stand out from the spread behind them.
struct MethodStyle {
  AlignmentMethod method;
  const char* block;
  const char* label;
  const char* colour;
  const char* tint;
};
constexpr MethodStyle kStyles[] = {
    {AlignmentMethod::kMuon, "$muon", "Muon", "#1f77b4", "#aec7e8"},
    {AlignmentMethod::kMuon2, "$muon2", "Muon²", "#ff7f0e", "#ffbb78"},
};

const std::array<ImageFormat, 2> kAlignmentChartFormats = png_and_svg(1000, 700);

fs::path plot_folder(const AlignmentPlotOptions& options) {
  if (options.name.empty() || options.name.find('/') != std::string::npos) {
    fail("plot name '{}' must be a file name without a folder", options.name);
  }
  if (options.out_dir.find_first_of("\r\n") != std::string::npos) {
    fail("plot folder '{}' has a line break in its name, which gnuplot cannot write to", options.out_dir);
  }
  return fs::absolute(options.out_dir).lexically_normal();
}

// Columns: k, the mean, then one column per row (matrix).
std::string data_block(const std::vector<AlignmentRow>& rows, const MethodStyle& style) {
  const std::vector<double> mean = mean_curve(rows, style.method);
  std::string block = fmt::format("{} << EOD\n", style.block);
  for (size_t k = 0; k < mean.size(); ++k) {
    block += fmt::format("{} {}", k, gnuplot_number(mean[k]));
    for (const AlignmentRow& row : rows) block += " " + gnuplot_number(curve_of(row, style.method)[k]);
    block += "\n";
  }
  return block + "EOD\n";
}

std::string plot_command(size_t row_count) {
  std::vector<std::string> curves;
  const size_t last_column = row_count + 2;
  for (const MethodStyle& style : kStyles) {
    curves.push_back(fmt::format("for [i=3:{}] {} using 1:i with lines linecolor rgb '{}' linewidth 1 notitle",
                                 last_column, style.block, style.tint));
  }
  for (const MethodStyle& style : kStyles) {
    curves.push_back(fmt::format(
        "{} using 1:2 with linespoints linecolor rgb '{}' linewidth 3 pointtype 7 pointsize 1.3 title {}",
        style.block, style.colour,
        gnuplot_string(fmt::format("{} (mean of {})", style.label, row_count))));
  }
  std::string command = "plot ";
  for (size_t i = 0; i < curves.size(); ++i) command += (i == 0 ? "" : ", \\\n     ") + curves[i];
  return command + "\n";
}

std::string settings(const AlignmentPlotOptions& options) {
  std::string text = gnuplot_png_terminal_choice() +
                     "set grid\n"
                     "set key bottom right\n"
                     "set xtics 1\n"
                     "set xlabel 'Newton-Schulz step k'\n"
                     "set ylabel 'alignment cos(NS_k(X), msign(X))'\n"
                     "set yrange [*:1.01]\n";
  if (!options.title.empty()) text += "set title " + gnuplot_string(options.title) + "\n";
  return text;
}

}  // namespace

AlignmentPlotFiles alignment_plot_files(const AlignmentPlotOptions& options) {
  const fs::path folder = plot_folder(options);
  AlignmentPlotFiles files;
  files.script = (folder / (options.name + ".gp")).string();
  for (const ImageFormat& format : kAlignmentChartFormats) {
    files.figures.push_back((folder / fmt::format("{}.{}", options.name, format.extension)).string());
  }
  return files;
}

std::string alignment_plot_script(const std::vector<AlignmentRow>& rows, const AlignmentPlotOptions& options) {
  if (rows.empty()) fail("no matrices to plot");
  const AlignmentPlotFiles files = alignment_plot_files(options);
  std::string script = fmt::format(
      "# Written by muonlab align: directional alignment after each Newton-Schulz\n"
      "# step for Muon's input and Muon²'s, {} matrices. Edit the style and rerun:\n"
      "# gnuplot {}\n"
      "# Data blocks: columns k, mean alignment, then one column per matrix.\n",
      rows.size(), files.script);
  for (const MethodStyle& style : kStyles) script += data_block(rows, style);
  script += "\n" + settings(options);
  for (size_t i = 0; i < std::size(kAlignmentChartFormats); ++i) {
    script += fmt::format("set terminal {}\nset output {}\n", kAlignmentChartFormats[i].terminal,
                          gnuplot_string(files.figures[i]));
    script += i == 0 ? plot_command(rows.size()) : "replot\n";
  }
  return script + "set output\n";
}

AlignmentPlotFiles plot_alignment(const std::vector<AlignmentRow>& rows, const AlignmentPlotOptions& options,
                                  std::string* gnuplot_output) {
  const std::string script = alignment_plot_script(rows, options);
  const AlignmentPlotFiles files = alignment_plot_files(options);
  create_plot_folder(options.out_dir);
  write_text_file_atomically(files.script, script);
  const std::string printed = run_gnuplot(files.script);
  if (gnuplot_output != nullptr) *gnuplot_output = printed;
  return files;
}

}  // namespace muonlab::analysis
