// Reads one top-level string column of a Parquet file, row by row: the
// `text` column of FineWeb's, FineWeb-Edu's and Hugging Face datasets'
// Parquet files. Reads what common writers (pyarrow, the Arrow Rust writer,
// parquet-mr, DuckDB) write for such a column: data pages v1 and v2, PLAIN,
// dictionary and delta encodings, several row groups, nulls; pages
// compressed with the codecs of parquet_codecs.h. One column chunk is held
// in memory at a time. Anything else (nested or non-string columns, other
// codecs, encrypted files) fails naming the file and what it found.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace muonlab::data {

// Called once per row in file order: the row's value, or nullptr for a null.
using ParquetStringVisitor = std::function<void(const std::string_view* value)>;

// Returns the number of rows read.
int64_t read_parquet_string_column(const std::string& path, const std::string& column,
                                   const ParquetStringVisitor& visit);

}  // namespace muonlab::data
