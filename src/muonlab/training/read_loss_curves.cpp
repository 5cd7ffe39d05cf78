#include "muonlab/training/read_loss_curves.h"

#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "muonlab/core/errors.h"
#include "muonlab/training/metrics_records.h"

namespace muonlab::training {
namespace {

constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

double step_of(const MetricsRecord& record, const std::string& path) {
  std::optional<double> step = number_field(record, "step", path);
  if (!step || std::isnan(*step)) fail("{}:{}: a loss record without a 'step'", path, record.line);
  return *step;
}

std::map<double, double> tokens_by_step(const std::vector<MetricsRecord>& records, const std::string& path) {
  std::map<double, double> tokens;
  for (const MetricsRecord& record : records) {
    if (!record.find("loss")) continue;
    if (std::optional<double> trained = number_field(record, "tokens", path)) tokens[step_of(record, path)] = *trained;
  }
  return tokens;
}

// Tokens trained when an evaluation ran: its own "tokens", else the step
// record's; an evaluation before the first step has trained on none.
double eval_tokens(const MetricsRecord& record, double step, const std::map<double, double>& tokens_at_step,
                   const std::string& path) {
  if (std::optional<double> trained = number_field(record, "tokens", path)) return *trained;
  if (auto it = tokens_at_step.find(step); it != tokens_at_step.end()) return it->second;
  return step == 0 ? 0 : kUnknown;
}

}  // namespace

analysis::LossCurves read_loss_curves(const std::string& jsonl_path) {
  return loss_curves_of(read_metrics_records(jsonl_path), jsonl_path);
}

analysis::LossCurves loss_curves_of(const std::vector<MetricsRecord>& records, const std::string& jsonl_path) {
  const std::map<double, double> tokens_at_step = tokens_by_step(records, jsonl_path);
  analysis::LossCurves curves;
  for (const MetricsRecord& record : records) {
    std::optional<double> loss = number_field(record, "loss", jsonl_path);
    std::optional<double> val_loss = number_field(record, "val_loss", jsonl_path);
    std::optional<double> acc_norm = number_field(record, "hellaswag_acc_norm", jsonl_path);
    if (!loss && !val_loss && !acc_norm) continue;
    const double step = step_of(record, jsonl_path);
    if (loss) {
      double tokens = number_field(record, "tokens", jsonl_path).value_or(kUnknown);
      curves.train.push_back({step, tokens, *loss});
    }
    if (val_loss) curves.validation.push_back({step, eval_tokens(record, step, tokens_at_step, jsonl_path), *val_loss});
    if (acc_norm) curves.hellaswag.push_back({step, eval_tokens(record, step, tokens_at_step, jsonl_path), *acc_norm});
  }
  return curves;
}

}  // namespace muonlab::training
