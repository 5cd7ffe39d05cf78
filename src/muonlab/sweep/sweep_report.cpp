#include "muonlab/sweep/sweep_report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "muonlab/analysis/evaluation_plot.h"
#include "muonlab/analysis/loss_plot.h"
#include "muonlab/analysis/statistics.h"
#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/sweep/lr_bracket.h"
#include "muonlab/sweep/natural_order.h"
#include "muonlab/sweep/report_runs.h"
#include "muonlab/sweep/runs_csv.h"
#include "muonlab/sweep/sweep_index.h"
#include "muonlab/sweep/sweep_runner.h"
#include "muonlab/training/run_folder.h"

namespace muonlab::sweep {
namespace fs = std::filesystem;
namespace {

// Runs of one (condition, variant, lr) cell.
struct Cell {
  std::string condition, variant, lr;
  std::vector<const ReportRun*> runs;
  analysis::Summary loss;
  // Over the runs, when every one tracked attention logits.
  std::optional<analysis::Summary> peak_max_logit, final_max_logit;
  // Over the runs, when every one scored HellaSwag.
  std::optional<analysis::Summary> hellaswag;
};

// Strings in natural order, element by element: tables list batch size 4
// before 16, and lr 0.00075 before 0.0015.
struct NaturalTupleLess {
  static bool less_in_order(std::initializer_list<std::pair<const std::string&, const std::string&>> pairs) {
    for (const auto& [x, y] : pairs) {
      if (natural_less(x, y)) return true;
      if (natural_less(y, x)) return false;
    }
    return false;
  }
  bool operator()(const std::pair<std::string, std::string>& a, const std::pair<std::string, std::string>& b) const {
    return less_in_order({{a.first, b.first}, {a.second, b.second}});
  }
  bool operator()(const std::tuple<std::string, std::string, std::string>& a,
                  const std::tuple<std::string, std::string, std::string>& b) const {
    return less_in_order({{std::get<0>(a), std::get<0>(b)}, {std::get<1>(a), std::get<1>(b)},
                          {std::get<2>(a), std::get<2>(b)}});
  }
};

// (condition, variant, lr) -> its cell.
using CellMap = std::map<std::tuple<std::string, std::string, std::string>, Cell, NaturalTupleLess>;
// variant -> its cell at the best lr, in natural order: every table and
// chart of a condition lists the variants the same way.
using VariantCells = std::map<std::string, const Cell*, NaturalLess>;

// The summary of `member` over the cell's runs, if every run has it.
std::optional<analysis::Summary> summarize_if_all(const std::vector<const ReportRun*>& runs,
                                                  std::optional<double> ReportRun::*member) {
  std::vector<double> values;
  for (const ReportRun* run : runs) {
    if (!(run->*member)) return std::nullopt;
    values.push_back(*(run->*member));
  }
  return analysis::summarize(values);
}

CellMap cells_of(const std::vector<ReportRun>& runs) {
  CellMap cells;
  for (const auto& run : runs) {
    Cell& cell = cells[{run.condition, run.record.variant, run.record.lr}];
    cell.condition = run.condition;
    cell.variant = run.record.variant;
    cell.lr = run.record.lr;
    cell.runs.push_back(&run);
  }
  for (auto& [key, cell] : cells) {
    std::vector<double> losses;
    for (const ReportRun* run : cell.runs) losses.push_back(run->val_loss);
    cell.loss = analysis::summarize(losses);
    cell.peak_max_logit = summarize_if_all(cell.runs, &ReportRun::peak_max_logit);
    cell.final_max_logit = summarize_if_all(cell.runs, &ReportRun::final_max_logit);
    cell.hellaswag = summarize_if_all(cell.runs, &ReportRun::hellaswag);
  }
  return cells;
}

std::string mean_std(const analysis::Summary& s) {
  return s.n > 1 ? fmt::format("{:.4f} ± {:.4f}", s.mean, s.std) : fmt::format("{:.4f}", s.mean);
}

// A run's resolved settings (its config.toml), as the report prints them.
training::TrainConfig run_settings(const ReportRun& run) { return training::load_run_config(run.record.run_dir); }

std::string lr_text(const Cell& cell) {
  return cell.lr.empty() ? fmt::format("{:g} (config)", run_settings(*cell.runs.front()).optimizer.lr) : cell.lr;
}

std::string logit_text(const std::optional<analysis::Summary>& s) {
  if (!s) return "-";
  return s->n > 1 ? fmt::format("{:.1f} ± {:.1f}", s->mean, s->std) : fmt::format("{:.1f}", s->mean);
}

// Every (condition, variant, lr) cell's final loss; where runs tracked
// attention logits (QK-clip), their largest logit too, and where they scored
// HellaSwag, its final acc_norm.
std::string every_lr_table(const CellMap& cells) {
  const auto any_cell = [&](std::optional<analysis::Summary> Cell::*member) {
    return std::any_of(cells.begin(), cells.end(), [&](const auto& item) { return (item.second.*member).has_value(); });
  };
  const bool logits = any_cell(&Cell::peak_max_logit);
  const bool hellaswag = any_cell(&Cell::hellaswag);
  std::string md = "\n## Every learning rate\n\n";
  if (logits) {
    md += "Largest attention logit of any head (QK-clip's tracking, before the step's clip), mean ± std over "
          "seeds: its peak over the run, and at the last step; `-`: not tracked.\n\n";
  }
  if (hellaswag) md += "HellaSwag acc_norm at the last evaluation, mean ± std over seeds; `-`: not scored.\n\n";
  md += "| condition | variant | lr | seeds | val loss |";
  std::string rule = "|---|---|---|---:|---:|";
  if (logits) md += " peak max logit | final max logit |", rule += "---:|---:|";
  if (hellaswag) md += " HellaSwag acc_norm |", rule += "---:|";
  md += "\n" + rule + "\n";
  for (const auto& [key, cell] : cells) {
    md += fmt::format("| {} | {} | {} | {} | {} |", cell.condition.empty() ? "-" : cell.condition, cell.variant,
                      lr_text(cell), cell.loss.n, mean_std(cell.loss));
    if (logits) md += fmt::format(" {} | {} |", logit_text(cell.peak_max_logit), logit_text(cell.final_max_logit));
    if (hellaswag) md += fmt::format(" {} |", cell.hellaswag ? mean_std(*cell.hellaswag) : "-");
    md += "\n";
  }
  return md;
}

// Mean curve over a cell's runs, point by point, with the seeds' std as its
// spread (runs of one cell log the same steps; a shorter run truncates it).
analysis::LossCurves mean_curves(const Cell& cell) {
  analysis::LossCurves mean;
  auto average = [&](auto member) {
    std::vector<analysis::LossPoint> out;
    size_t length = std::numeric_limits<size_t>::max();
    for (const ReportRun* run : cell.runs) length = std::min(length, (run->curves.*member).size());
    for (size_t i = 0; i < length; ++i) {
      analysis::LossPoint point = (cell.runs.front()->curves.*member)[i];
      std::vector<double> losses;
      for (const ReportRun* run : cell.runs) losses.push_back((run->curves.*member)[i].loss);
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
  mean.hellaswag = average(&analysis::LossCurves::hellaswag);
  return mean;
}

// The runs of two cells on the seeds both ran, in seed order.
std::vector<std::pair<const ReportRun*, const ReportRun*>> shared_seeds(const Cell& variant, const Cell& baseline) {
  std::map<std::string, const ReportRun*> base_by_seed;
  for (const ReportRun* run : baseline.runs) base_by_seed[run->seed] = run;
  std::vector<std::pair<const ReportRun*, const ReportRun*>> pairs;
  for (const ReportRun* run : variant.runs) {
    auto it = base_by_seed.find(run->seed);
    if (it != base_by_seed.end()) pairs.emplace_back(run, it->second);
  }
  return pairs;
}

std::string interval_text(const analysis::Interval& interval, const char* format) {
  return fmt::format("[{}, {}]", fmt::format(fmt::runtime(format), interval.low),
                     fmt::format(fmt::runtime(format), interval.high));
}

// The mean over `indices` of `value` of each item.
template <typename Item, typename Value>
double mean_at(const std::vector<Item>& items, const std::vector<int64_t>& indices, Value value) {
  double sum = 0;
  for (const int64_t i : indices) sum += value(items[static_cast<size_t>(i)]);
  return sum / static_cast<double>(indices.size());
}

std::vector<int64_t> all_indices(size_t n) {
  std::vector<int64_t> indices(n);
  for (size_t i = 0; i < n; ++i) indices[i] = static_cast<int64_t>(i);
  return indices;
}

// One measure of a variant's runs against the baseline's, over the seeds
// both ran: the mean difference with its bootstrap interval, a paired t-test,
// and its p-value after Holm's correction.
struct PairedResult {
  std::string difference = "-", test = "baseline", holm = "-";
  std::optional<double> p_value;
};

// A variant at its best lr against the baseline at its own: the paired
// difference of final losses (and of HellaSwag accuracies, where both scored
// it), and tokens to target with R = T_baseline / T_variant and their
// intervals.
struct Comparison {
  std::string condition, variant;
  const Cell* cell = nullptr;
  const Cell* baseline = nullptr;  // null: the baseline itself, or none ran in this condition
  LrBracket bracket = LrBracket::kSingle;
  std::string grid;  // the lrs tried, "0.01, 0.02, 0.04"

  PairedResult loss;       // final validation loss
  PairedResult hellaswag;  // final HellaSwag acc_norm
  std::string tokens = "-", ratio = "-", compute = "-";
};

std::string tokens_text(const Cell& cell) {
  std::vector<double> tokens;
  for (const ReportRun* run : cell.runs) {
    if (!run->tokens_to_target) return "not reached";
    tokens.push_back(*run->tokens_to_target);
  }
  const auto identity = [](double t) { return t; };
  const analysis::Interval interval = analysis::bootstrap_interval(
      static_cast<int64_t>(tokens.size()), [&](const std::vector<int64_t>& i) { return mean_at(tokens, i, identity); });
  return fmt::format("{:.0f} {}", mean_at(tokens, all_indices(tokens.size()), identity),
                     interval_text(interval, "{:.0f}"));
}

using RunPairs = std::vector<std::pair<const ReportRun*, const ReportRun*>>;

// `value` of each pair's variant run minus its baseline run's; with fewer
// than two pairs, the difference of the cells' means (`unpaired`) alone.
PairedResult paired_difference(const RunPairs& pairs, double (*value)(const ReportRun&), double unpaired) {
  PairedResult result;
  if (pairs.size() < 2) {
    result.test = "n/a (fewer than 2 shared seeds)";
    result.difference = fmt::format("{:+.4f}", unpaired);
    return result;
  }
  std::vector<double> a, b;
  for (const auto& [run, base] : pairs) {
    a.push_back(value(*run));
    b.push_back(value(*base));
  }
  const auto test = analysis::paired_t_test(a, b);
  // Differences equal but for rounding (0.28 - 0.26 against 0.29 - 0.27)
  // count as equal.
  std::vector<double> differences(a.size());
  for (size_t i = 0; i < a.size(); ++i) differences[i] = a[i] - b[i];
  const analysis::Summary spread = analysis::summarize(differences);
  if (spread.std > 1e-9 * std::abs(spread.mean)) {
    result.p_value = test.p_two_sided;
    result.test = fmt::format("t = {:.2f}, p = {:.3g} ({} pairs)", test.t, test.p_two_sided, test.pairs);
  } else {
    // Every pair differs by the same amount, as accuracies on a few items
    // can: the t-test's p = 0 would claim a certainty the seeds do not give.
    result.test = fmt::format("n/a (every one of {} pairs differs by the same amount)", test.pairs);
  }
  const analysis::Interval interval =
      analysis::bootstrap_interval(static_cast<int64_t>(differences.size()), [&](const std::vector<int64_t>& i) {
        return mean_at(differences, i, [](double d) { return d; });
      });
  result.difference = fmt::format("{:+.4f} {}", test.mean_difference, interval_text(interval, "{:+.4f}"));
  return result;
}

void compare_to_baseline(Comparison& comparison, bool with_target) {
  const RunPairs pairs = shared_seeds(*comparison.cell, *comparison.baseline);
  comparison.loss = paired_difference(pairs, [](const ReportRun& run) { return run.val_loss; },
                                      comparison.cell->loss.mean - comparison.baseline->loss.mean);
  if (comparison.cell->hellaswag && comparison.baseline->hellaswag) {
    comparison.hellaswag = paired_difference(
        pairs, [](const ReportRun& run) { return *run.hellaswag; },
        comparison.cell->hellaswag->mean - comparison.baseline->hellaswag->mean);
  } else {
    comparison.hellaswag.test = "-";  // one of the two did not score it
  }
  if (!with_target) return;
  const auto reached = [](const std::pair<const ReportRun*, const ReportRun*>& p) {
    return p.first->tokens_to_target && p.second->tokens_to_target;
  };
  if (pairs.empty() || !std::all_of(pairs.begin(), pairs.end(), reached)) return;
  const auto ratio_at = [&](const std::vector<int64_t>& i) {
    return mean_at(pairs, i, [](const auto& p) { return *p.second->tokens_to_target; }) /
           mean_at(pairs, i, [](const auto& p) { return *p.first->tokens_to_target; });
  };
  const double ratio = ratio_at(all_indices(pairs.size()));
  const analysis::Interval interval = analysis::bootstrap_interval(static_cast<int64_t>(pairs.size()), ratio_at);
  comparison.ratio = fmt::format("{:.2f} {}", ratio, interval_text(interval, "{:.2f}"));
  comparison.compute = fmt::format("{:.0f}%", 100 / ratio);
}

// Mean validation loss at every evaluation, a row per variant: which
// variant leads early and which late (the Group Muon paper's "head-wise
// wins early, larger groups win late").
std::string validation_along_training(const VariantCells& variants) {
  std::map<std::string, analysis::LossCurves, NaturalLess> means;
  std::set<double> steps;
  for (const auto& [variant, cell] : variants) {
    const auto& curves = means[variant] = mean_curves(*cell);
    for (const auto& point : curves.validation) steps.insert(point.step);
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

// Each variant's mean validation loss at each evaluation, in natural order.
std::vector<analysis::VariantEvaluations> evaluations_of(const VariantCells& variants) {
  std::vector<analysis::VariantEvaluations> out;
  for (const auto& [variant, cell] : variants) {
    analysis::VariantEvaluations v{variant, {}};
    for (const auto& point : mean_curves(*cell).validation) v.loss_at_step[point.step] = point.loss;
    out.push_back(std::move(v));
  }
  return out;
}

// The one-step gain and norm cost sums over training, per variant, group
// size and step (mean over seeds), where the runs logged them.
std::string one_step_table(const VariantCells& variants) {
  std::string md;
  for (const auto& [variant, cell] : variants) {
    // step -> key -> values over seeds
    std::map<int64_t, std::map<std::string, std::vector<double>>> values;
    for (const ReportRun* run : cell->runs) {
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
      std::set<std::string, NaturalLess> groups;  // g2 before g12
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

namespace {

// Fewer seeds than this and a comparison is marked preliminary.
constexpr int64_t kSeedsForAClaim = 5;

// The item counts of a cell's HellaSwag scores: "500", or "500 / 1000"
// where its runs scored different numbers of items.
std::set<int64_t> hellaswag_item_counts(const Cell& cell) {
  std::set<int64_t> counts;
  for (const ReportRun* run : cell.runs) counts.insert(run->hellaswag_items);
  return counts;
}

// Each variant's final HellaSwag acc_norm in one condition, at its best lr
// (chosen by validation loss, not by accuracy), against the baseline's;
// empty where no run of the condition scored it.
std::string hellaswag_table(const std::vector<Comparison>& comparisons, const std::string& condition) {
  std::vector<const Comparison*> scored;
  std::set<int64_t> all_counts;
  for (const auto& c : comparisons) {
    if (c.condition != condition || !c.cell->hellaswag) continue;
    scored.push_back(&c);
    for (const int64_t count : hellaswag_item_counts(*c.cell)) all_counts.insert(count);
  }
  if (scored.empty()) return "";
  std::string md =
      "\nHellaSwag acc_norm at the last evaluation, each variant at its best lr by validation loss (mean ± std "
      "over seeds), and its difference from the baseline's over the seeds both ran, as above (Holm's correction "
      "across the report's HellaSwag comparisons).";
  const double items = static_cast<double>(*all_counts.begin());
  if (items > 0) {
    md += fmt::format(" Every run scores the same items. How well {:.0f} items stand for the whole set is another "
                      "matter: an accuracy measured on them has a binomial standard error of up to {:.3f} "
                      "(sqrt(p (1 - p) / items), largest at p = 0.5).",
                      items, 0.5 / std::sqrt(items));
  }
  if (all_counts.size() > 1) {
    md += fmt::format(" **Runs scored different numbers of items ({}): their accuracies are not comparable.**",
                      fmt::join(all_counts, ", "));
  }
  md += "\n\n| variant | seeds | items | HellaSwag acc_norm | vs baseline [95% CI] | paired t-test | Holm p |\n"
        "|---|---:|---:|---:|---|---|---:|\n";
  for (const Comparison* c : scored) {
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", c->variant, c->cell->hellaswag->n,
                      fmt::join(hellaswag_item_counts(*c->cell), " / "), mean_std(*c->cell->hellaswag),
                      c->hellaswag.difference, c->hellaswag.test, c->hellaswag.holm);
  }
  return md;
}

// Each (condition, variant)'s best lr (lowest mean final loss) with where
// it sits in the lrs tried.
std::vector<Comparison> best_cells(const CellMap& cells) {
  std::map<std::pair<std::string, std::string>, std::vector<const Cell*>, NaturalTupleLess> grids;
  for (const auto& [key, cell] : cells) grids[{cell.condition, cell.variant}].push_back(&cell);
  std::vector<Comparison> comparisons;
  for (const auto& [key, grid] : grids) {
    Comparison comparison;
    comparison.condition = key.first;
    comparison.variant = key.second;
    std::map<double, double> mean_by_lr;
    std::vector<std::string> lrs;
    for (const Cell* cell : grid) {
      if (comparison.cell == nullptr || cell->loss.mean < comparison.cell->loss.mean) comparison.cell = cell;
      if (cell->lr.empty()) continue;
      mean_by_lr[parse_lr(cell->lr)] = cell->loss.mean;
    }
    for (const auto& [lr, mean] : mean_by_lr) lrs.push_back(fmt::format("{:g}", lr));
    comparison.bracket = mean_by_lr.empty() ? LrBracket::kSingle : lr_bracket(mean_by_lr);
    comparison.grid = lrs.empty() ? "-" : fmt::format("{}", fmt::join(lrs, ", "));
    comparisons.push_back(std::move(comparison));
  }
  return comparisons;
}

// Holm's correction over every comparison of one measure with a p-value: the
// family is the whole report (every variant against the baseline, in every
// condition).
void adjust_for_multiple_comparisons(std::vector<Comparison>& comparisons, PairedResult Comparison::*measure) {
  std::vector<double> p_values;
  for (const auto& c : comparisons) {
    if ((c.*measure).p_value) p_values.push_back(*(c.*measure).p_value);
  }
  const std::vector<double> adjusted = analysis::holm_adjust(p_values);
  size_t next = 0;
  for (auto& c : comparisons) {
    if ((c.*measure).p_value) (c.*measure).holm = fmt::format("{:.3g}", adjusted[next++]);
  }
}

// What a reader must know before trusting a number: lrs not bracketed, too
// few seeds, a target chosen after the runs, runs missing.
std::string caveats(const std::vector<Comparison>& comparisons, const SweepMeta& meta, int64_t runs_missing) {
  std::vector<std::string> lines;
  for (const auto& c : comparisons) {
    const std::string where = c.condition.empty() ? c.variant : fmt::format("{} ({})", c.variant, c.condition);
    if (c.bracket != LrBracket::kInside) {
      lines.push_back(fmt::format("**{}: learning rate not bracketed** ({}{})", where, describe(c.bracket),
                                  c.grid == "-" ? "" : "; tried " + c.grid));
    }
    if (c.cell->loss.n < kSeedsForAClaim) {
      lines.push_back(fmt::format("{}: {} seed(s), fewer than {}: preliminary", where, c.cell->loss.n,
                                  kSeedsForAClaim));
    }
  }
  if (meta.baseline != meta.declared_baseline) {
    lines.push_back(fmt::format("**baseline `{}` chosen after the runs** (the spec declared `{}`): its comparisons "
                                "are post hoc",
                                meta.baseline, meta.declared_baseline));
  }
  if (meta.target_loss && meta.target_loss != meta.declared_target_loss) {
    lines.push_back(fmt::format("**target loss {} chosen after the runs** (the spec declared {}): post hoc",
                                *meta.target_loss,
                                meta.declared_target_loss ? fmt::format("{}", *meta.declared_target_loss) : "none"));
  }
  if (runs_missing > 0) lines.push_back(fmt::format("{} run(s) not finished and left out", runs_missing));
  if (lines.empty()) return "";
  std::string md = "\n## Caveats\n\n";
  for (const auto& line : lines) md += "- " + line + "\n";
  return md;
}

std::string ns_steps_text(const training::OptimizerSettings& o) {
  if (!training::is_muon_variant(o.name)) return "-";
  return std::to_string(o.ns_steps > 0 ? o.ns_steps : optim::default_ns_steps(training::muon_variant(o.name)));
}

// Every variant's resolved settings at its best lr, read from its first
// run's config.toml, so what the tables say ran is what ran.
std::string settings_table(const std::vector<Comparison>& comparisons) {
  std::string md =
      "\n## Settings of each variant at its best learning rate (from its runs' config.toml)\n\n"
      "| condition | variant | optimizer | lr | AdamW lr | weight decay (Muon / AdamW) | momentum | K | coefficients "
      "| scale rule | orthogonalize | group size | schedule | steps | batch x seq |\n"
      "|---|---|---|---:|---:|---|---:|---:|---|---|---|---:|---|---:|---|\n";
  for (const auto& c : comparisons) {
    const training::TrainConfig config = run_settings(*c.cell->runs.front());
    const auto& o = config.optimizer;
    const auto& sc = config.schedule;
    const bool muon = training::is_muon_variant(o.name);
    md += fmt::format(
        "| {} | {} | {} | {:g} | {} | {} | {:g} | {} | {} | {} | {} | {} | {}, warmup {}, decay {:g}, min {:g} | {} | "
        "{} x {} |\n",
        c.condition.empty() ? "-" : c.condition, c.variant, o.name, o.lr, muon ? fmt::format("{:g}", o.adamw_lr) : "-",
        muon ? fmt::format("{:g} / {:g}", o.weight_decay, o.adamw_weight_decay) : fmt::format("{:g}", o.weight_decay),
        o.momentum, ns_steps_text(o), muon ? o.ns_coefficients : "-", muon ? o.scale_rule : "-",
        muon ? (o.orthogonalize ? "yes" : "no") : "-", muon && o.group_size > 0 ? std::to_string(o.group_size) : "-",
        training::schedule_kind_name(sc.kind), sc.warmup_steps, sc.decay_fraction, sc.min_ratio, config.run.steps,
        config.data.batch_size, config.data.seq_len);
  }
  return md;
}

// The tokens between two evaluations of a cell's runs: how finely tokens to
// target is resolved (it is interpolated between evaluations).
std::optional<double> evaluation_spacing(const Cell& cell) {
  const auto& validation = cell.runs.front()->curves.validation;
  if (validation.size() < 2) return std::nullopt;
  return validation[1].tokens - validation[0].tokens;
}

}  // namespace

SweepReportResult write_sweep_report(const SweepReportOptions& options) {
  SweepMeta meta = read_sweep_meta(options.sweep_dir);
  if (options.target_loss) meta.target_loss = options.target_loss;
  const std::string index_path = (fs::path(options.sweep_dir) / "index.sqlite").string();
  if (!fs::exists(index_path)) fail("'{}' not found: expected a folder written by muonlab sweep", index_path);
  auto records = SweepIndex(index_path).all();
  // The index names each run's folder as the sweep was given it (relative
  // to where it ran); read it where it is now, under this folder, so that a
  // sweep moved, archived (scripts/archive-sweep) or reported from another
  // directory reports the same.
  for (auto& record : records) record.run_dir = sweep_run_dir(options.sweep_dir, record.id);
  const std::vector<ReportRun> runs = finished_runs(records, meta);
  if (runs.empty()) fail("sweep '{}': no finished run with a validation loss yet", options.sweep_dir);

  SweepReportResult result;
  result.runs_done = static_cast<int64_t>(runs.size());
  result.runs_missing = static_cast<int64_t>(records.size()) - result.runs_done;
  result.markdown_path = options.out.empty() ? (fs::path(options.sweep_dir) / "report.md").string() : options.out;
  // report.md's runs in report-runs.csv, beside it.
  result.csv_path = (fs::path(result.markdown_path).parent_path() /
                     (fs::path(result.markdown_path).stem().string() + "-runs.csv")).string();
  if (const fs::path folder = fs::path(result.markdown_path).parent_path(); !folder.empty()) {
    fs::create_directories(folder);  // --out into a new folder
  }
  const auto cells = cells_of(runs);
  std::vector<Comparison> comparisons = best_cells(cells);
  if (options.baseline) {
    std::set<std::string> variants;
    for (const auto& c : comparisons) variants.insert(c.variant);
    if (!variants.count(*options.baseline)) {
      fail("--baseline {}: no finished run of that variant in '{}'; the variants are {}", *options.baseline,
           options.sweep_dir, fmt::join(variants, ", "));
    }
    meta.baseline = *options.baseline;
  }
  // condition -> variant -> cell, conditions in natural order
  std::map<std::string, VariantCells, NaturalLess> best;
  for (const auto& c : comparisons) best[c.condition][c.variant] = c.cell;
  for (auto& c : comparisons) {
    const auto& variants = best[c.condition];
    const auto base = variants.find(meta.baseline);
    if (base == variants.end() || base->second == c.cell) continue;
    c.baseline = base->second;
    compare_to_baseline(c, meta.target_loss.has_value());
  }
  adjust_for_multiple_comparisons(comparisons, &Comparison::loss);
  adjust_for_multiple_comparisons(comparisons, &Comparison::hellaswag);

  std::string md = fmt::format("# Sweep `{}`\n\n{} finished runs", meta.name, result.runs_done);
  if (result.runs_missing > 0) md += fmt::format(" ({} not finished, left out)", result.runs_missing);
  md += fmt::format("; baseline `{}`; final validation loss, mean ± std over seeds (`{}`).\n", meta.baseline,
                    kSeedAxis);
  md += caveats(comparisons, meta, result.runs_missing);
  md += settings_table(comparisons);

  md += every_lr_table(cells);

  md += "\n## Each variant at its best learning rate, against the baseline\n\n";
  md += "Difference of the final validation loss from the baseline's (each at its own best lr) over the seeds "
        "both ran, with a 95% percentile bootstrap interval over seeds; paired t-test (two-sided) and its p-value "
        "after Holm's correction across every comparison in this report. lr grid: the lrs tried; `edge`: the best "
        "is the smallest or largest tried, so the variant is not tuned.";
  if (meta.target_loss) {
    md += fmt::format(" Tokens to reach loss {} (validation curve when evaluated along the way, else training "
                      "loss; linear interpolation between evaluations), mean over seeds with a bootstrap interval; "
                      "R = T_{} / T_variant over the seeds both ran (above 1: fewer tokens than the baseline) with a "
                      "paired bootstrap interval; compute to target relative to the baseline = 1 / R (the same "
                      "model, so the same training FLOPs per token; the optimizer's own FLOPs are left out).",
                      *meta.target_loss, meta.baseline);
  }
  md += "\n";
  int chart = 0;
  for (const auto& [condition, variants] : best) {
    md += fmt::format("\n### {}\n\n", condition.empty() ? "All runs" : condition);
    md += "| variant | best lr | lr grid | seeds | val loss | vs baseline [95% CI] | paired t-test | Holm p |";
    md += meta.target_loss ? " tokens to target [95% CI] | R [95% CI] | compute vs baseline |\n"
                             "|---|---|---|---:|---:|---|---|---:|---|---|---:|\n"
                           : "\n|---|---|---|---:|---:|---|---|---:|\n";
    std::vector<analysis::RunCurves> condition_curves;
    for (const auto& c : comparisons) {
      if (c.condition != condition) continue;
      md += fmt::format("| {} | {} | {}{} | {} | {} | {} | {} | {} |", c.variant, lr_text(*c.cell), c.grid,
                        c.bracket == LrBracket::kLowEdge || c.bracket == LrBracket::kHighEdge ? " (edge)" : "",
                        c.cell->loss.n, mean_std(c.cell->loss), c.loss.difference, c.loss.test, c.loss.holm);
      if (meta.target_loss) md += fmt::format(" {} | {} | {} |", tokens_text(*c.cell), c.ratio, c.compute);
      md += "\n";
      condition_curves.push_back({fmt::format("{} (lr {})", c.variant, lr_text(*c.cell)), mean_curves(*c.cell)});
    }
    if (meta.target_loss) {
      if (const auto spacing = evaluation_spacing(*variants.begin()->second)) {
        md += fmt::format("\nEvaluations {:.0f} tokens apart: tokens to target is interpolated at that resolution.\n",
                          *spacing);
      }
    }
    md += hellaswag_table(comparisons, condition);
    md += validation_along_training(variants);
    md += one_step_table(variants);
    if (options.plots) {
      analysis::LossPlotOptions plot;
      plot.out_dir = (fs::path(result.markdown_path).parent_path() / "charts").string();
      plot.name = fmt::format("curves_{}", chart++);
      plot.title = "mean loss over seeds, each variant at its best lr" +
                   (condition.empty() ? std::string() : ", " + condition);
      const auto files = analysis::plot_losses(condition_curves, plot).files;
      for (const auto& figure : files.figures) result.figures.push_back(figure);
      md += fmt::format("\n![mean loss curves, {}](charts/{}_vs_tokens.png)\n",
                        condition.empty() ? "all runs" : condition, plot.name);
      if (std::any_of(condition_curves.begin(), condition_curves.end(),
                      [](const analysis::RunCurves& run) { return !run.curves.hellaswag.empty(); })) {
        md += fmt::format("\n![mean HellaSwag acc_norm, {}](charts/{}_hellaswag_vs_tokens.png)\n",
                          condition.empty() ? "all runs" : condition, plot.name);
      }
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
  md += fmt::format("\nEvery finished run, a row each, with its axes and the figures above: `{}`.\n",
                    fs::path(result.csv_path).filename().string());
  write_text_file_atomically(result.csv_path, runs_csv_text(runs));
  write_text_file_atomically(result.markdown_path, md);
  return result;
}

}  // namespace muonlab::sweep
