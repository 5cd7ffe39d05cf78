// Validation loss of each variant at each evaluation: the variants along the
// x axis (in the order given: a sweep's group sizes or NS steps, say), one
// line per evaluation step, so an early and a late ranking read side by
// side (the Group Muon paper's "head-wise early, larger groups late").
// Drawn by gnuplot as PNG and SVG.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace muonlab::analysis {

struct VariantEvaluations {
  std::string variant;
  std::map<double, double> loss_at_step;  // evaluation step -> validation loss (mean over seeds)
};

struct EvaluationPlotOptions {
  std::string out_dir = ".";               // created if missing
  std::string name = "evaluations";        // OUT/NAME.{gp,png,svg}
  std::string title;                       // may be empty
};

struct EvaluationPlotFiles {
  std::string script;                      // OUT/NAME.gp
  std::vector<std::string> figures;        // OUT/NAME.png, OUT/NAME.svg
};

// The gnuplot script, data inline: one row per variant, one column per
// evaluation step ("NaN" where a variant was not evaluated there). Fails
// without variants or without any evaluation.
std::string evaluation_plot_script(const std::vector<VariantEvaluations>& variants,
                                   const EvaluationPlotOptions& options);

// Writes the script and runs gnuplot; returns the files (absolute paths).
EvaluationPlotFiles plot_evaluations(const std::vector<VariantEvaluations>& variants,
                                     const EvaluationPlotOptions& options);

}  // namespace muonlab::analysis
