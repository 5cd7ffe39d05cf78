#include "muonlab/sweep/report_runs.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "muonlab/analysis/statistics.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/read_file.h"
#include "muonlab/training/metrics_records.h"
#include "muonlab/training/read_loss_curves.h"

namespace muonlab::sweep {
namespace fs = std::filesystem;
namespace {

// A run's largest attention logits, from the steps of its metrics.jsonl
// that logged "max_logit" (before that step's clip), and its last HellaSwag
// acc_norm with its item count.
void take_logits_and_hellaswag(const std::vector<training::MetricsRecord>& records, const std::string& jsonl_path,
                               ReportRun& run) {
  for (const auto& record : records) {
    if (const std::optional<double> logit = training::number_field(record, "max_logit", jsonl_path);
        logit && !std::isnan(*logit)) {
      run.peak_max_logit = std::max(run.peak_max_logit.value_or(*logit), *logit);
      run.final_max_logit = logit;
    }
    if (const std::optional<double> accuracy = training::number_field(record, "hellaswag_acc_norm", jsonl_path);
        accuracy && !std::isnan(*accuracy)) {
      run.hellaswag = accuracy;
      run.hellaswag_items =
          static_cast<int64_t>(training::number_field(record, "hellaswag_items", jsonl_path).value_or(0));
    }
  }
}

// The one-step sums (keys "onestep_g{g}_{gain,cost}_{ns,exact}", without a
// parameter name) of a run's metrics.jsonl, by step.
std::map<int64_t, std::map<std::string, double>> one_step_sums_of(const std::vector<training::MetricsRecord>& records,
                                                                  const std::string& jsonl_path) {
  std::map<int64_t, std::map<std::string, double>> sums;
  for (const auto& record : records) {
    const std::optional<double> step = training::number_field(record, "step", jsonl_path);
    if (!step || std::isnan(*step)) continue;
    for (const auto& field : record.fields) {
      if (field.key.rfind("onestep_g", 0) != 0 || field.key.find('.') != std::string::npos) continue;
      const std::optional<double> sum = training::number_field(record, field.key, jsonl_path);
      if (sum && !std::isnan(*sum)) sums[static_cast<int64_t>(*step)][field.key] = *sum;
    }
  }
  return sums;
}

// Tokens trained when the loss first reached `target`: on the validation
// curve when there are evaluations along the way, else on the (noisier)
// training curve.
std::optional<double> tokens_to_reach(const analysis::LossCurves& curves, double target) {
  const auto& points = curves.validation.size() >= 2 ? curves.validation : curves.train;
  std::vector<double> tokens, losses;
  for (const auto& p : points) {
    if (!tokens.empty() && !(p.tokens > tokens.back())) continue;
    tokens.push_back(p.tokens);
    losses.push_back(p.loss);
  }
  return analysis::x_to_reach(tokens, losses, target);
}

}  // namespace

SweepMeta read_sweep_meta(const std::string& sweep_dir) {
  const fs::path path = fs::path(sweep_dir) / "sweep.json";
  if (!fs::exists(path)) fail("'{}' not found: expected a folder written by muonlab sweep", path.string());
  const auto json = nlohmann::json::parse(read_whole_file(path.string()), nullptr, false);
  if (!json.is_object() || !json.contains("name") || !json.contains("baseline")) {
    fail("'{}': expected a JSON object with name and baseline", path.string());
  }
  SweepMeta meta{json["name"].get<std::string>(), json["baseline"].get<std::string>(), "", std::nullopt};
  meta.declared_baseline = meta.baseline;
  if (json.contains("target_loss")) meta.target_loss = json["target_loss"].get<double>();
  meta.declared_target_loss = meta.target_loss;
  return meta;
}

std::vector<ReportRun> finished_runs(const std::vector<RunRecord>& records, const SweepMeta& meta) {
  std::vector<ReportRun> runs;
  for (const auto& record : records) {
    if (record.status != "done" || !record.outcome.final_val_loss) continue;
    ReportRun run;
    run.record = record;
    run.val_loss = *record.outcome.final_val_loss;
    const RunAxes axes = axes_of(record);
    run.seed = axes.seed;
    run.condition = axes.condition;
    // One pass over the file, for the curves and the rest.
    const std::string metrics_path = (fs::path(record.run_dir) / "metrics.jsonl").string();
    const std::vector<training::MetricsRecord> metrics = training::read_metrics_records(metrics_path);
    run.curves = training::loss_curves_of(metrics, metrics_path);
    run.one_step = one_step_sums_of(metrics, metrics_path);
    take_logits_and_hellaswag(metrics, metrics_path, run);
    if (meta.target_loss) run.tokens_to_target = tokens_to_reach(run.curves, *meta.target_loss);
    runs.push_back(std::move(run));
  }
  return runs;
}

}  // namespace muonlab::sweep
