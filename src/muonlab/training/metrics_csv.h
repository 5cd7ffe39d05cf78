// A run's metrics.jsonl as a CSV table, for spreadsheets and pandas.
#pragma once

#include <string>

namespace muonlab::training {

// One row per JSON line. The columns are every key of the file in the order
// first seen, "step" first; a record without a key leaves its cell empty, as
// does JSON null. Numbers are written so they parse back to the same double,
// booleans as true/false, text quoted as RFC 4180 says when it holds a comma,
// a quote or a line break (lines end in "\n", not RFC 4180's "\r\n").
// Written atomically; fails naming the file, or "path:line" for a bad line.
void write_metrics_csv(const std::string& jsonl_path, const std::string& csv_path);

}  // namespace muonlab::training
