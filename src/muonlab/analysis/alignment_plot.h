// The Muon² paper's main figure, for muonlab's own matrices: directional
// alignment cos(NS_k(X), msign(X)) against the Newton-Schulz step k, for
// Muon's input and Muon²'s, one thin line per matrix and a thick line for
// the mean of each. Drawn by gnuplot as PNG and SVG.
#pragma once

#include <string>
#include <vector>

#include "muonlab/analysis/spectrum_alignment.h"

namespace muonlab::analysis {

struct AlignmentPlotOptions {
  std::string out_dir = ".";   // created if missing
  std::string name = "alignment";  // OUT/NAME.{gp,png,svg}
  std::string title;           // above the chart (what was measured); may be empty
};

struct AlignmentPlotFiles {
  std::string script;                // OUT/NAME.gp, to restyle and rerun with gnuplot
  std::vector<std::string> figures;  // OUT/NAME.png, OUT/NAME.svg
};

// Absolute paths. Fails when the name is not a plain file name.
AlignmentPlotFiles alignment_plot_files(const AlignmentPlotOptions& options);

// The gnuplot script, data inline. Fails when there are no rows.
std::string alignment_plot_script(const std::vector<AlignmentRow>& rows, const AlignmentPlotOptions& options);

// Writes the script and runs gnuplot; returns the files. What gnuplot
// printed (warnings) goes to `gnuplot_output` when it is not null.
AlignmentPlotFiles plot_alignment(const std::vector<AlignmentRow>& rows, const AlignmentPlotOptions& options,
                                  std::string* gnuplot_output = nullptr);

}  // namespace muonlab::analysis
