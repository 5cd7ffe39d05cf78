// CSV text as RFC 4180 writes it, for the tables muonlab leaves beside its
// JSON and Markdown (metrics.csv, a sweep report's runs): lines end in "\n",
// not RFC 4180's "\r\n", as pandas and spreadsheets read either.
#pragma once

#include <string>
#include <vector>

namespace muonlab {

// A field with a comma, quote or line break quoted, its quotes doubled;
// any other as it is.
std::string csv_field(const std::string& text);

// The cells (already fields) joined by commas, ending in "\n".
std::string csv_row(const std::vector<std::string>& cells);

}  // namespace muonlab
