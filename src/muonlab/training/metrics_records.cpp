#include "muonlab/training/metrics_records.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "muonlab/core/errors.h"
#include "muonlab/core/read_file.h"

namespace muonlab::training {
namespace {

// ordered_json keeps keys in file order; nlohmann::json would sort them.
using Json = nlohmann::ordered_json;

MetricsValue to_metrics_value(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return std::monostate{};
    case Json::value_t::boolean:
      return value.get<bool>();
    case Json::value_t::number_integer:
      return value.get<int64_t>();
    case Json::value_t::number_unsigned: {
      const auto unsigned_value = value.get<uint64_t>();
      if (unsigned_value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return static_cast<int64_t>(unsigned_value);
      }
      return static_cast<double>(unsigned_value);
    }
    case Json::value_t::number_float:
      return value.get<double>();
    case Json::value_t::string:
      return value.get<std::string>();
    default:
      return value.dump();
  }
}

// The start of a bad line, enough to recognize it in an error message.
std::string excerpt(const std::string& line) {
  constexpr size_t kMaxChars = 60;
  return line.size() <= kMaxChars ? line : line.substr(0, kMaxChars) + "...";
}

MetricsRecord parse_record(const std::string& line, int64_t line_number, const std::string& path) {
  Json object;
  try {
    object = Json::parse(line);
  } catch (const Json::parse_error& e) {
    fail("{}:{}: not valid JSON (column {}): '{}'", path, line_number, e.byte, excerpt(line));
  }
  if (!object.is_object()) {
    fail("{}:{}: expected a JSON object, got {}: '{}'", path, line_number, object.type_name(), excerpt(line));
  }
  MetricsRecord record;
  record.line = line_number;
  for (const auto& [key, value] : object.items()) record.fields.push_back({key, to_metrics_value(value)});
  return record;
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

}  // namespace

const MetricsValue* MetricsRecord::find(const std::string& key) const {
  for (const MetricsField& field : fields) {
    if (field.key == key) return &field.value;
  }
  return nullptr;
}

std::vector<MetricsRecord> read_metrics_records(const std::string& jsonl_path) {
  const std::string content = read_whole_file(jsonl_path);
  std::istringstream text(content);
  std::vector<MetricsRecord> records;
  int64_t line_number = 0;
  // Every record is written with its newline, so a last line without one
  // was cut by a crash or a full disk: it is left out, not an error.
  const bool last_line_torn = !content.empty() && content.back() != '\n';
  for (std::string line; std::getline(text, line);) {
    ++line_number;
    if (last_line_torn && text.peek() == std::char_traits<char>::eof()) break;
    if (!is_blank(line)) records.push_back(parse_record(line, line_number, jsonl_path));
  }
  return records;
}

std::optional<double> number_field(const MetricsRecord& record, const std::string& key, const std::string& jsonl_path) {
  const MetricsValue* value = record.find(key);
  if (value == nullptr) return std::nullopt;
  if (std::holds_alternative<std::monostate>(*value)) return std::numeric_limits<double>::quiet_NaN();
  if (const auto* integer = std::get_if<int64_t>(value)) return static_cast<double>(*integer);
  if (const auto* real = std::get_if<double>(value)) return *real;
  const char* got = std::holds_alternative<bool>(*value) ? "a boolean" : "text";
  fail("{}:{}: '{}' should be a number, got {}", jsonl_path, record.line, key, got);
}

}  // namespace muonlab::training
