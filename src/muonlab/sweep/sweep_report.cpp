#include "muonlab/sweep/sweep_report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "muonlab/analysis/evaluation_plot.h"
#include "muonlab/analysis/loss_plot.h"
#include "muonlab/analysis/statistics.h"
#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/read_file.h"
#include "muonlab/training/read_loss_curves.h"
#include "muonlab/sweep/sweep_index.h"

namespace muonlab::sweep {
namespace fs = std::filesystem;
namespace {

struct SweepMeta {
  std::string name;
  std::string baseline;
  std::optional<double> target_loss;
};

SweepMeta read_meta(const std::string& sweep_dir) {
  const fs::path path = fs::path(sweep_dir) / "sweep.json";
  if (!fs::exists(path)) fail("'{}' not found: expected a folder written by muonlab sweep", path.string());
  const auto json = nlohmann::json::parse(read_whole_file(path.string()), nullptr, false);
  if (!json.is_object() || !json.contains("name") || !json.contains("baseline")) {
    fail("'{}': expected a JSON object with name and baseline", path.string());
  }
  SweepMeta meta{json["name"].get<std::string>(), json["baseline"].get<std::string>(), std::nullopt};
  if (json.contains("target_loss")) meta.target_loss = json["target_loss"].get<double>();
  return meta;
}

// A finished run as the report sees it.
struct Run {
  RunRecord record;
  std::string seed;        // the kSeedAxis value ("" when the sweep has no seed axis)
  std::string condition;   // the other axes, "key=value, ..." ("" when none)
  double val_loss = 0;
  analysis::LossCurves curves;
  std::optional<double> tokens_to_target;
  // The one-step sums the trainer logged ("onestep_g2_gain_ns", ...), by step.
  std::map<int64_t, std::map<std::string, double>> one_step;
};

// The one-step sums (keys "onestep_g{g}_{gain,cost}_{ns,exact}", without a
// parameter name) of a run's metrics.jsonl, by step.
std::map<int64_t, std::map<std::string, double>> read_one_step_sums(const std::string& jsonl_path) {
  std::map<int64_t, std::map<std::string, double>> sums;
  std::ifstream in(jsonl_path);
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"onestep_g") == std::string::npos) continue;
    const auto record = nlohmann::json::parse(line, nullptr, false);
    if (!record.is_object() || !record.contains("step")) continue;
    for (const auto& [key, value] : record.items()) {
      if (key.rfind("onestep_g", 0) == 0 && key.find('.') == std::string::npos && value.is_number()) {
        sums[record["step"].get<int64_t>()][key] = value.get<double>();
      }
    }
  }
  return sums;
}

std::vector<Run> finished_runs(const std::vector<RunRecord>& records, const SweepMeta& meta) {
  std::vector<Run> runs;
  for (const auto& record : records) {
    if (record.status != "done" || !record.outcome.final_val_loss) continue;
    Run run;
    run.record = record;
    run.val_loss = *record.outcome.final_val_loss;
    std::vector<std::string> others;
    const auto axes = nlohmann::ordered_json::parse(record.axes_json);
    for (const auto& [key, value] : axes.items()) {
      if (key == kSeedAxis) {
        run.seed = value.get<std::string>();
      } else {
        others.push_back(key + "=" + value.get<std::string>());
      }
    }
    run.condition = fmt::format("{}", fmt::join(others, ", "));
    run.curves = training::read_loss_curves((fs::path(record.run_dir) / "metrics.jsonl").string());
    run.one_step = read_one_step_sums((fs::path(record.run_dir) / "metrics.jsonl").string());
    if (meta.target_loss) {
      // The validation curve when there are evaluations along the way, else
      // the (noisier) training curve.
      const auto& points = run.curves.validation.size() >= 2 ? run.curves.validation : run.curves.train;
      std::vector<double> tokens, losses;
      for (const auto& p : points) {
        if (!tokens.empty() && !(p.tokens > tokens.back())) continue;
        tokens.push_back(p.tokens);
        losses.push_back(p.loss);
      }
      run.tokens_to_target = analysis::x_to_reach(tokens, losses, *meta.target_loss);
    }
    runs.push_back(std::move(run));
  }
  return runs;
}

// Runs of one (condition, variant, lr) cell.
struct Cell {
  std::string condition, variant, lr;
  std::vector<const Run*> runs;
  analysis::Summary loss;
};

std::map<std::tuple<std::string, std::string, std::string>, Cell> cells_of(const std::vector<Run>& runs) {
  std::map<std::tuple<std::string, std::string, std::string>, Cell> cells;
  for (const auto& run : runs) {
    Cell& cell = cells[{run.condition, run.record.variant, run.record.lr}];
    cell.condition = run.condition;
    cell.variant = run.record.variant;
    cell.lr = run.record.lr;
    cell.runs.push_back(&run);
  }
  for (auto& [key, cell] : cells) {
    std::vector<double> losses;
    for (const Run* run : cell.runs) losses.push_back(run->val_loss);
    cell.loss = analysis::summarize(losses);
  }
  return cells;
}

std::string mean_std(const analysis::Summary& s) {
  return s.n > 1 ? fmt::format("{:.4f} ± {:.4f}", s.mean, s.std) : fmt::format("{:.4f}", s.mean);
}

std::string lr_text(const std::string& lr) { return lr.empty() ? "(config)" : lr; }

// The mean of the runs' tokens to target, when every run reached it.
std::optional<double> mean_tokens_to_target(const Cell& cell) {
  double sum = 0;
  for (const Run* run : cell.runs) {
    if (!run->tokens_to_target) return std::nullopt;
    sum += *run->tokens_to_target;
  }
  return sum / static_cast<double>(cell.runs.size());
}

// Mean curve over a cell's runs, point by point, with the seeds' std as its
// spread (runs of one cell log the same steps; a shorter run truncates it).
analysis::LossCurves mean_curves(const Cell& cell) {
  analysis::LossCurves mean;
  auto average = [&](auto member) {
    std::vector<analysis::LossPoint> out;
    size_t length = std::numeric_limits<size_t>::max();
    for (const Run* run : cell.runs) length = std::min(length, (run->curves.*member).size());
    for (size_t i = 0; i < length; ++i) {
      analysis::LossPoint point = (cell.runs.front()->curves.*member)[i];
      std::vector<double> losses;
      for (const Run* run : cell.runs) losses.push_back((run->curves.*member)[i].loss);
      if (!std::all_of(losses.begin(), losses.end(), [](double l) { return std::isfinite(l); })) continue;
      const analysis::Summary summary = analysis::summarize(losses);
      point.loss = summary.mean;
      if (summary.n > 1) point.spread = summary.std;
      out.push_back(point);
    }
    return out;
  };
  mean.train = average(&analysis::LossCurves::train);
  mean.validation = average(&analysis::LossCurves::validation);
  return mean;
}

std::string paired_test_text(const Cell& variant, const Cell& baseline) {
  std::map<std::string, double> base_by_seed;
  for (const Run* run : baseline.runs) base_by_seed[run->seed] = run->val_loss;
  std::vector<double> a, b;
  for (const Run* run : variant.runs) {
    auto it = base_by_seed.find(run->seed);
    if (it == base_by_seed.end()) continue;
    a.push_back(run->val_loss);
    b.push_back(it->second);
  }
  if (a.size() < 2) return "n/a (fewer than 2 shared seeds)";
  const auto test = analysis::paired_t_test(a, b);
  return fmt::format("t = {:.2f}, p = {:.3g} ({} pairs)", test.t, test.p_two_sided, test.pairs);
}

// Mean validation loss at every evaluation, a row per variant: which
// variant leads early and which late (the Group Muon paper's "head-wise
// wins early, larger groups win late").
std::string validation_along_training(const std::map<std::string, const Cell*>& variants) {
  std::map<std::string, analysis::LossCurves> means;
  std::set<double> steps;
  for (const auto& [variant, cell] : variants) {
    means[variant] = mean_curves(*cell);
    for (const auto& point : means[variant].validation) steps.insert(point.step);
  }
  if (steps.size() < 2) return "";
  std::string md = "\nValidation loss at each evaluation (mean over seeds):\n\n| variant |";
  for (const double step : steps) md += fmt::format(" step {} |", step);
  md += "\n|---|";
  for (size_t i = 0; i < steps.size(); ++i) md += "---:|";
  md += "\n";
  for (const auto& [variant, curves] : means) {
    md += "| " + variant + " |";
    for (const double step : steps) {
      const auto it = std::find_if(curves.validation.begin(), curves.validation.end(),
                                   [&](const analysis::LossPoint& p) { return p.step == step; });
      md += it == curves.validation.end() ? " - |" : fmt::format(" {:.4f} |", it->loss);
    }
    md += "\n";
  }
  return md;
}

// Names with their digit runs compared as numbers, so g2 < g6 < g12 and
// muon-k3 < muon-k10: the order a reader expects group sizes and NS steps in.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i_end = i, j_end = j;
      while (i_end < a.size() && std::isdigit(static_cast<unsigned char>(a[i_end]))) ++i_end;
      while (j_end < b.size() && std::isdigit(static_cast<unsigned char>(b[j_end]))) ++j_end;
      const std::string x = a.substr(i, i_end - i), y = b.substr(j, j_end - j);
      if (x.size() != y.size()) return x.size() < y.size();  // no leading zeros in the names that matter
      if (x != y) return x < y;
      i = i_end;
      j = j_end;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

// Each variant's mean validation loss at each evaluation, in natural order.
std::vector<analysis::VariantEvaluations> evaluations_of(const std::map<std::string, const Cell*>& variants) {
  std::vector<analysis::VariantEvaluations> out;
  for (const auto& [variant, cell] : variants) {
    analysis::VariantEvaluations v{variant, {}};
    for (const auto& point : mean_curves(*cell).validation) v.loss_at_step[point.step] = point.loss;
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return natural_less(x.variant, y.variant); });
  return out;
}

// The one-step gain and norm cost sums over training, per variant, group
// size and step (mean over seeds), where the runs logged them.
std::string one_step_table(const std::map<std::string, const Cell*>& variants) {
  std::string md;
  for (const auto& [variant, cell] : variants) {
    // step -> key -> values over seeds
    std::map<int64_t, std::map<std::string, std::vector<double>>> values;
    for (const Run* run : cell->runs) {
      for (const auto& [step, sums] : run->one_step) {
        for (const auto& [key, value] : sums) values[step][key].push_back(value);
      }
    }
    if (values.empty()) continue;
    if (md.empty()) {
      md = "\nOne-step descent terms, summed over the attention weights (mean over seeds): whitening gain "
           "<G, O_grp> - <G, O_all> and norm cost ||O_grp||^2 - ||O_all||^2, from NS and from exact polar "
           "factors:\n\n| variant | step | g | gain NS | gain exact | cost NS | cost exact |\n"
           "|---|---:|---:|---:|---:|---:|---:|\n";
    }
    for (const auto& [step, keys] : values) {
      std::set<std::string> groups;
      for (const auto& [key, v] : keys) groups.insert(key.substr(0, key.find('_', 9)));  // "onestep_g12"
      for (const auto& group : groups) {
        auto mean_of = [&](const std::string& term) {
          auto it = keys.find(group + "_" + term);
          return it == keys.end() ? std::string("-") : fmt::format("{:.4g}", analysis::summarize(it->second).mean);
        };
        md += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", variant, step, group.substr(9),
                          mean_of("gain_ns"), mean_of("gain_exact"), mean_of("cost_ns"), mean_of("cost_exact"));
      }
    }
  }
  return md;
}

}  // namespace

SweepReportResult write_sweep_report(const SweepReportOptions& options) {
  SweepMeta meta = read_meta(options.sweep_dir);
  if (options.target_loss) meta.target_loss = options.target_loss;
  const std::string index_path = (fs::path(options.sweep_dir) / "index.sqlite").string();
  if (!fs::exists(index_path)) fail("'{}' not found: expected a folder written by muonlab sweep", index_path);
  const auto records = SweepIndex(index_path).all();
  const std::vector<Run> runs = finished_runs(records, meta);
  if (runs.empty()) fail("sweep '{}': no finished run with a validation loss yet", options.sweep_dir);

  SweepReportResult result;
  result.runs_done = static_cast<int64_t>(runs.size());
  result.runs_missing = static_cast<int64_t>(records.size()) - result.runs_done;
  result.markdown_path = options.out.empty() ? (fs::path(options.sweep_dir) / "report.md").string() : options.out;
  const auto cells = cells_of(runs);

  std::string md = fmt::format("# Sweep `{}`\n\n{} finished runs", meta.name, result.runs_done);
  if (result.runs_missing > 0) md += fmt::format(" ({} not finished, left out)", result.runs_missing);
  md += fmt::format("; baseline `{}`; final validation loss, mean ± std over seeds (`{}`).\n", meta.baseline,
                    kSeedAxis);

  md += "\n## Every learning rate\n\n| condition | variant | lr | seeds | val loss |\n|---|---|---|---:|---:|\n";
  for (const auto& [key, cell] : cells) {
    md += fmt::format("| {} | {} | {} | {} | {} |\n", cell.condition.empty() ? "-" : cell.condition, cell.variant,
                      lr_text(cell.lr), cell.loss.n, mean_std(cell.loss));
  }

  // Best lr per (condition, variant).
  std::map<std::string, std::map<std::string, const Cell*>> best;  // condition -> variant -> cell
  for (const auto& [key, cell] : cells) {
    const Cell*& slot = best[cell.condition][cell.variant];
    if (slot == nullptr || cell.loss.mean < slot->loss.mean) slot = &cell;
  }
  md += "\n## Each variant at its best learning rate, against the baseline\n\n";
  md += "Paired t-test of the final validation loss over the seeds both ran (two-sided).";
  if (meta.target_loss) {
    md += fmt::format(" Tokens to reach loss {} (validation curve when evaluated along the way, else training "
                      "loss; linear interpolation); R = T_{} / T_variant, above 1: fewer tokens than the baseline; "
                      "compute to target relative to the baseline = 1 / R (the same model, so the same training "
                      "FLOPs per token; the optimizer's own FLOPs are left out).",
                      *meta.target_loss, meta.baseline);
  }
  md += "\n";
  int chart = 0;
  for (const auto& [condition, variants] : best) {
    md += fmt::format("\n### {}\n\n", condition.empty() ? "All runs" : condition);
    md += "| variant | best lr | seeds | val loss | vs baseline | paired t-test |";
    md += meta.target_loss ? " tokens to target | R | compute vs baseline |\n|---|---|---:|---:|---:|---|---:|---:|---:|\n"
                           : "\n|---|---|---:|---:|---:|---|\n";
    const auto base_it = variants.find(meta.baseline);
    const Cell* base = base_it == variants.end() ? nullptr : base_it->second;
    const std::optional<double> base_tokens = base ? mean_tokens_to_target(*base) : std::nullopt;
    std::vector<analysis::RunCurves> condition_curves;
    for (const auto& [variant, cell] : variants) {
      const bool is_base = cell == base;
      md += fmt::format("| {} | {} | {} | {} | {} | {} |", variant, lr_text(cell->lr), cell->loss.n,
                        mean_std(cell->loss),
                        base && !is_base ? fmt::format("{:+.4f}", cell->loss.mean - base->loss.mean) : "-",
                        base && !is_base ? paired_test_text(*cell, *base) : "baseline");
      if (meta.target_loss) {
        const auto tokens = mean_tokens_to_target(*cell);
        md += fmt::format(" {} | {} | {} |", tokens ? fmt::format("{:.0f}", *tokens) : "not reached",
                          tokens && base_tokens ? fmt::format("{:.2f}", *base_tokens / *tokens) : "-",
                          tokens && base_tokens ? fmt::format("{:.0f}%", 100 * *tokens / *base_tokens) : "-");
      }
      md += "\n";
      condition_curves.push_back({fmt::format("{} (lr {})", variant, lr_text(cell->lr)), mean_curves(*cell)});
    }
    md += validation_along_training(variants);
    md += one_step_table(variants);
    if (options.plots) {
      analysis::LossPlotOptions plot;
      plot.out_dir = (fs::path(result.markdown_path).parent_path() / "charts").string();
      plot.name = fmt::format("curves_{}", chart++);
      const auto files = analysis::plot_losses(condition_curves, plot).files;
      for (const auto& figure : files.figures) result.figures.push_back(figure);
      md += fmt::format("\n![mean loss curves, {}](charts/{}_vs_tokens.png)\n",
                        condition.empty() ? "all runs" : condition, plot.name);
      const auto evaluations = evaluations_of(variants);
      if (evaluations.size() >= 2 && !evaluations.front().loss_at_step.empty()) {
        analysis::EvaluationPlotOptions evaluation_plot;
        evaluation_plot.out_dir = plot.out_dir;
        evaluation_plot.name = fmt::format("evaluations_{}", chart - 1);
        evaluation_plot.title = "validation loss of each variant at each evaluation" +
                                (condition.empty() ? std::string() : ", " + condition);
        for (const auto& figure : analysis::plot_evaluations(evaluations, evaluation_plot).figures) {
          result.figures.push_back(figure);
        }
        md += fmt::format("\n![validation loss of each variant at each evaluation, {}](charts/{}.png)\n",
                          condition.empty() ? "all runs" : condition, evaluation_plot.name);
      }
    }
  }
  write_text_file_atomically(result.markdown_path, md);
  return result;
}

}  // namespace muonlab::sweep
