// Reads one top-level string column of a Parquet file, row by row: the
// `text` column of FineWeb's, FineWeb-Edu's and Hugging Face datasets'
// Parquet files. Reads the format's page kinds and encodings for such a
// column (tested against the Arrow Rust writer's files): data pages v1 and
// v2, PLAIN, dictionary and delta encodings, several row groups, nulls; pages
// compressed with the codecs of parquet_codecs.h. Pages are read from the
// file one at a time: memory holds one page, its rows and the dictionary,
// however large the row groups. Anything else (nested or non-string
// columns, other codecs, encrypted files) fails naming the file and what it
// found.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace muonlab::data {

// Reads the column forward, a row at a time:
//   ParquetStringColumnReader reader(path, "text");
//   while (reader.next()) use(reader.value());
// Fails (muonlab::Error naming the file, column and row group) on opening a
// file it cannot read, or on reaching a part of it that it cannot.
class ParquetStringColumnReader {
 public:
  ParquetStringColumnReader(const std::string& path, const std::string& column);
  ~ParquetStringColumnReader();
  ParquetStringColumnReader(ParquetStringColumnReader&&) noexcept;
  ParquetStringColumnReader& operator=(ParquetStringColumnReader&&) noexcept;

  // Moves to the next row; false after the last.
  bool next();
  // The current row's index (-1 before the first next()).
  int64_t row() const;
  // The current row's text, valid until next(); nullptr for a null.
  const std::string_view* value() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Called once per row in file order: the row's value, or nullptr for a null.
using ParquetStringVisitor = std::function<void(const std::string_view* value)>;

// Returns the number of rows read.
int64_t read_parquet_string_column(const std::string& path, const std::string& column,
                                   const ParquetStringVisitor& visit);

}  // namespace muonlab::data
