#include "muonlab/sweep/runs_csv.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <nlohmann/json.hpp>
#include <optional>

#include "muonlab/core/csv_text.h"

namespace muonlab::sweep {
namespace {

// fmt's "{}" is the shortest text that reads back as the same double.
std::string number_cell(std::optional<double> value) { return value ? fmt::format("{}", *value) : ""; }

using AxisValues = std::vector<std::pair<std::string, std::string>>;

// The record's axes in their order, {"run.seed": "1", ...}. (Parsed into a
// local: a range-for over a temporary's items() would outlive it.)
AxisValues axis_values(const RunRecord& record) {
  const auto axes = nlohmann::ordered_json::parse(record.axes_json);
  AxisValues values;
  for (const auto& [key, value] : axes.items()) values.emplace_back(key, value.get<std::string>());
  return values;
}

std::vector<std::string> axis_keys(const std::vector<AxisValues>& runs_axes) {
  std::vector<std::string> keys;
  for (const AxisValues& axes : runs_axes) {
    for (const auto& [key, value] : axes) {
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    }
  }
  return keys;
}

}  // namespace

std::string runs_csv_text(const std::vector<ReportRun>& runs) {
  std::vector<AxisValues> runs_axes;
  for (const ReportRun& run : runs) runs_axes.push_back(axis_values(run.record));
  const std::vector<std::string> axes = axis_keys(runs_axes);
  std::vector<std::string> header{"id", "variant", "lr"};
  for (const std::string& key : axes) header.push_back(csv_field(key));
  for (const char* column : {"val_loss", "train_loss", "steps", "tokens", "seconds", "tokens_to_target",
                             "peak_max_logit", "final_max_logit", "hellaswag_acc_norm", "hellaswag_items",
                             "run_dir"}) {
    header.emplace_back(column);
  }
  std::string text = csv_row(header);
  for (size_t i = 0; i < runs.size(); ++i) {
    const ReportRun& run = runs[i];
    const RunRecord& record = run.record;
    std::vector<std::string> cells{csv_field(record.id), csv_field(record.variant), csv_field(record.lr)};
    const AxisValues& values = runs_axes[i];
    for (const std::string& key : axes) {
      const auto it =
          std::find_if(values.begin(), values.end(), [&key](const auto& axis) { return axis.first == key; });
      cells.push_back(it == values.end() ? "" : csv_field(it->second));
    }
    cells.push_back(number_cell(run.val_loss));
    cells.push_back(number_cell(record.outcome.final_train_loss));
    cells.push_back(fmt::format("{}", record.outcome.steps));
    cells.push_back(fmt::format("{}", record.outcome.tokens));
    cells.push_back(number_cell(record.outcome.seconds));
    cells.push_back(number_cell(run.tokens_to_target));
    cells.push_back(number_cell(run.peak_max_logit));
    cells.push_back(number_cell(run.final_max_logit));
    cells.push_back(number_cell(run.hellaswag));
    cells.push_back(run.hellaswag ? fmt::format("{}", run.hellaswag_items) : "");
    cells.push_back(csv_field(record.run_dir));
    text += csv_row(cells);
  }
  return text;
}

}  // namespace muonlab::sweep
