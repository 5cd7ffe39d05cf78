// Reads one top-level string column of a Parquet file, row by row: the
// `text` column of FineWeb's, FineWeb-Edu's and Hugging Face datasets'
// Parquet files. Reads the format's page kinds and encodings for such a
// column (tested against the Arrow Rust writer's files): data pages v1 and
// v2, PLAIN, dictionary and delta encodings, several row groups, nulls; pages
// compressed with the codecs of parquet_codecs.h. Pages are read from the
// file one at a time: memory holds one page, its rows and the dictionary,
// however large the row groups. Columns of lists of strings are read too
// (read_parquet_string_list_column). Anything else (other nested or
// non-string columns, other codecs, encrypted files) fails naming the file
// and what it found.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "muonlab/core/errors.h"

namespace muonlab::data {

// A file without the column asked for; the message lists the columns it
// has, and callers add which column a user should name instead.
class ParquetMissingColumn : public Error {
 public:
  using Error::Error;
};

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

// One row of a column of lists of strings: its elements, nullopt for a null
// element.
using ParquetStringList = std::vector<std::optional<std::string>>;
// Called once per row in file order: the row's list, or nullptr for a null
// list.
using ParquetStringListVisitor = std::function<void(const ParquetStringList* list)>;

// Reads a top-level column of lists of strings (Arrow's list<string>, how
// Hugging Face stores a sequence of strings, such as HellaSwag's endings;
// also the older two-level lists), with the same pages, encodings and codecs
// as a string column. Returns the number of rows read. Fails naming the file
// and column as the string reader does, and for a column that is not a list
// of strings.
int64_t read_parquet_string_list_column(const std::string& path, const std::string& column,
                                        const ParquetStringListVisitor& visit);

}  // namespace muonlab::data
