// The parts of a Parquet file's metadata (Apache Parquet's parquet.thrift)
// that reading one column needs: the schema, the row groups' column chunks,
// and page headers. Numeric codes keep the format's values; the *_name
// functions spell them for messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "muonlab/data/thrift_compact.h"

namespace muonlab::data {

namespace parquet_code {
// Physical types.
constexpr int32_t kByteArray = 6;
// Repetition of a schema element.
constexpr int32_t kRequired = 0, kOptional = 1, kRepeated = 2;
// Encodings.
constexpr int32_t kPlain = 0, kPlainDictionary = 2, kRle = 3, kBitPacked = 4, kDeltaBinaryPacked = 5,
                  kDeltaLengthByteArray = 6, kDeltaByteArray = 7, kRleDictionary = 8;
// Compression codecs.
constexpr int32_t kUncompressed = 0, kSnappy = 1, kGzip = 2, kBrotli = 4, kLz4Hadoop = 5, kZstd = 6, kLz4Raw = 7;
// Page types.
constexpr int32_t kDataPage = 0, kIndexPage = 1, kDictionaryPage = 2, kDataPageV2 = 3;
}  // namespace parquet_code

std::string parquet_type_name(int32_t type);
std::string parquet_encoding_name(int32_t encoding);
std::string parquet_codec_name(int32_t codec);

struct ParquetSchemaElement {
  std::string name;
  int32_t type = -1;        // physical type; -1 for a group
  int32_t repetition = -1;  // -1: not given (the root)
  int32_t num_children = 0;
};

struct ParquetColumnChunk {
  std::vector<std::string> path;  // path_in_schema
  int32_t type = -1;
  int32_t codec = 0;
  int64_t num_values = 0;  // values including nulls
  int64_t total_compressed_size = 0;
  int64_t data_page_offset = -1;
  int64_t dictionary_page_offset = -1;  // -1: none given
};

struct ParquetRowGroup {
  int64_t num_rows = 0;
  std::vector<ParquetColumnChunk> columns;
};

struct ParquetFileMetadata {
  int64_t num_rows = 0;
  std::vector<ParquetSchemaElement> schema;  // depth first; [0] is the root
  std::vector<ParquetRowGroup> row_groups;
};

struct ParquetPageHeader {
  int32_t type = -1;
  int32_t uncompressed_size = 0;
  int32_t compressed_size = 0;
  int32_t num_values = 0;  // data pages: values including nulls; dictionary pages: entries
  int32_t encoding = -1;
  int32_t definition_level_encoding = -1;  // data page v1
  // Data page v2: the levels' bytes, stored before the values and never
  // compressed, and whether the values are compressed.
  int32_t definition_levels_bytes = 0;
  int32_t repetition_levels_bytes = 0;
  bool values_compressed = true;
};

// The FileMetaData struct of a footer's bytes.
ParquetFileMetadata parse_parquet_file_metadata(const uint8_t* data, size_t size);
// The page header at the reader's cursor, which it leaves at the page's data.
ParquetPageHeader parse_parquet_page_header(ThriftCompactReader& reader);

}  // namespace muonlab::data
