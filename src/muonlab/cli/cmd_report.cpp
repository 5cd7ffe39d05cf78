// `muonlab report SWEEP_DIR [--out FILE] [--target-loss X] [--baseline VARIANT] [--no-plots]`: the Markdown report
// of a sweep (sweep_report.h).
#include <iostream>
#include <memory>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/cli/negated_flag.h"
#include "muonlab/sweep/sweep_report.h"

namespace muonlab::cli {

void register_report(CLI::App& app) {
  auto options = std::make_shared<sweep::SweepReportOptions>();
  auto* command = app.add_subcommand("report", "Markdown report of a sweep: means ± std, paired t-tests, tokens to target, curves");
  add_examples(*command, {
                    "muonlab report sweeps/headline-adamw-vs-muon",
                    "muonlab report sweeps/3-muon2 --target-loss 2.3 --no-plots",
                    "muonlab report sweeps/1-adamw-vs-muon --baseline muon --out ablations.md"});
  command->add_option("sweep_dir", options->sweep_dir, "Sweep folder written by muonlab sweep")->required();
  command->add_option("--out", options->out, "Markdown file (default: SWEEP_DIR/report.md)");
  command->add_option("--target-loss", options->target_loss,
                      "Loss for tokens-to-target and R (default: the spec's [sweep] target_loss)");
  command->add_option("--baseline", options->baseline,
                      "Variant every other is compared to (default: the spec's [sweep] baseline)");
  add_negated_flag(*command, "--no-plots", options->plots, "Skip the gnuplot charts");
  command->callback([options] {
    const auto result = sweep::write_sweep_report(*options);
    std::cout << fmt::format("{} runs reported ({} not finished, left out): {}\nruns as CSV: {}\n",
                             result.runs_done, result.runs_missing, result.markdown_path, result.csv_path);
    for (const auto& figure : result.figures) std::cout << "chart: " << figure << "\n";
  });
}

}  // namespace muonlab::cli
