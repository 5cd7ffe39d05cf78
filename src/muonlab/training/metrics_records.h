// The records of a run's metrics.jsonl (one JSON object per line, written by
// the trainer), with each object's keys in the order they were written.
// The CSV export and the loss curves read the file through this one parser,
// so both report a bad line the same way: "path:line: ...".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace muonlab::training {

// A JSON value of a record. JSON null (how a NaN loss is written) is
// std::monostate; arrays and objects are kept as their JSON text.
using MetricsValue = std::variant<std::monostate, bool, int64_t, double, std::string>;

struct MetricsField {
  std::string key;
  MetricsValue value;
};

struct MetricsRecord {
  int64_t line = 0;  // 1-based line in the file, for error messages
  std::vector<MetricsField> fields;

  // The value under `key`, or nullptr when the record has no such key.
  const MetricsValue* find(const std::string& key) const;
};

// Every non-blank line of the file, in order. Fails naming the file when it
// cannot be read, and "path:line" when a line is not a JSON object.
std::vector<MetricsRecord> read_metrics_records(const std::string& jsonl_path);

// The number under `key`: nullopt when the record has no such key, NaN for
// JSON null (how the trainer writes a NaN). Fails naming "path:line" and the
// key when the value is a boolean or text.
std::optional<double> number_field(const MetricsRecord& record, const std::string& key, const std::string& jsonl_path);

}  // namespace muonlab::training
