// libFuzzer target for the Parquet reader (parquet_string_column.h and the
// Thrift, encoding and codec code under it). The input is a whole Parquet
// file. Properties:
//   - read_parquet_string_column either returns, having visited exactly as
//     many rows as it returns, or throws muonlab::Error; no other exception
//     escapes, and ASan/UBSan stay quiet (no read outside the file's bytes
//     or the pages decompressed from them).
//   - The same for read_parquet_string_list_column on a list column.
//   - Reading is deterministic: a second read visits the same values.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "muonlab/core/errors.h"
#include "muonlab/data/parquet_string_column.h"

namespace {

[[noreturn]] void violated(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "fuzz_parquet: property violated: %s%s%s\n", what, detail.empty() ? "" : ": ",
               detail.c_str());
  __builtin_trap();
}

// The input as a file (the reader takes a path), rewritten for each input.
const std::string& input_file(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    char name[] = "/tmp/muonlab-fuzz-parquet-XXXXXX";
    const int fd = ::mkstemp(name);
    if (fd < 0) violated("cannot create a temporary file");
    ::close(fd);
    return std::string(name);
  }();
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr || std::fwrite(data, 1, size, file) != size || std::fclose(file) != 0) {
    violated("cannot write the input to", path);
  }
  return path;
}

// The column's values, or nothing where the reader refused the file.
std::optional<std::vector<std::optional<std::string>>> read_column(const std::string& path, const char* column) {
  std::vector<std::optional<std::string>> values;
  try {
    const int64_t rows = muonlab::data::read_parquet_string_column(path, column, [&](const std::string_view* value) {
      values.push_back(value ? std::optional<std::string>(*value) : std::nullopt);
    });
    if (rows != static_cast<int64_t>(values.size())) violated("the row count differs from the rows visited");
    return values;
  } catch (const muonlab::Error&) {
    return std::nullopt;
  } catch (const std::exception& error) {
    violated("an exception other than muonlab::Error", error.what());
  }
}

// The list column's rows (nullopt for a null list), or nothing where the
// reader refused the file.
using ListRows = std::vector<std::optional<muonlab::data::ParquetStringList>>;
std::optional<ListRows> read_lists(const std::string& path, const char* column) {
  ListRows rows;
  try {
    const int64_t count = muonlab::data::read_parquet_string_list_column(
        path, column, [&](const muonlab::data::ParquetStringList* list) {
          rows.push_back(list ? std::optional<muonlab::data::ParquetStringList>(*list) : std::nullopt);
        });
    if (count != static_cast<int64_t>(rows.size())) violated("the list row count differs from the rows visited");
    return rows;
  } catch (const muonlab::Error&) {
    return std::nullopt;
  } catch (const std::exception& error) {
    violated("an exception other than muonlab::Error", error.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = input_file(data, size);
  for (const char* column : {"text", "url"}) {
    const auto first = read_column(path, column);
    if (first != read_column(path, column)) violated("two reads of the same file differ");
  }
  const auto lists = read_lists(path, "words");
  if (lists != read_lists(path, "words")) violated("two reads of the same list column differ");
  return 0;
}
