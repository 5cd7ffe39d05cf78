#include "muonlab/training/metrics_csv.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>
#include <vector>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/csv_text.h"
#include "muonlab/training/metrics_records.h"

namespace muonlab::training {
namespace {

std::vector<std::string> column_names(const std::vector<MetricsRecord>& records) {
  std::vector<std::string> columns;
  std::unordered_set<std::string> seen;
  for (const MetricsRecord& record : records) {
    for (const MetricsField& field : record.fields) {
      if (seen.insert(field.key).second) columns.push_back(field.key);
    }
  }
  auto step = std::find(columns.begin(), columns.end(), "step");
  if (step != columns.end()) std::rotate(columns.begin(), step, step + 1);
  return columns;
}

// fmt's "{}" prints the shortest text that reads back as the same double.
struct CellText {
  std::string operator()(std::monostate) const { return ""; }
  std::string operator()(bool value) const { return value ? "true" : "false"; }
  std::string operator()(int64_t value) const { return fmt::format("{}", value); }
  std::string operator()(double value) const { return fmt::format("{}", value); }
  std::string operator()(const std::string& value) const { return csv_field(value); }
};

std::string metrics_csv_text(const std::vector<MetricsRecord>& records) {
  const std::vector<std::string> columns = column_names(records);
  if (columns.empty()) return "";
  std::vector<std::string> cells;
  for (const std::string& column : columns) cells.push_back(csv_field(column));
  std::string text = csv_row(cells);
  for (const MetricsRecord& record : records) {
    cells.clear();
    for (const std::string& column : columns) {
      const MetricsValue* value = record.find(column);
      cells.push_back(value == nullptr ? "" : std::visit(CellText{}, *value));
    }
    text += csv_row(cells);
  }
  return text;
}

}  // namespace

void write_metrics_csv(const std::string& jsonl_path, const std::string& csv_path) {
  write_text_file_atomically(csv_path, metrics_csv_text(read_metrics_records(jsonl_path)));
}

}  // namespace muonlab::training
