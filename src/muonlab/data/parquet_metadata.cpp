#include "muonlab/data/parquet_metadata.h"

#include <limits>

#include "muonlab/core/errors.h"

namespace muonlab::data {
namespace {

using Field = ThriftType;

template <typename Element>
std::vector<Element> read_list(ThriftCompactReader& reader, const std::function<Element()>& read_element) {
  const ThriftListHeader list = reader.read_list_header();
  std::vector<Element> elements;
  elements.reserve(list.size);
  for (uint32_t i = 0; i < list.size; ++i) elements.push_back(read_element());
  return elements;
}

int32_t read_i32(ThriftCompactReader& reader, Field type) {
  const int64_t value = reader.read_integer(type);
  if (value < std::numeric_limits<int32_t>::min() || value > std::numeric_limits<int32_t>::max()) {
    fail("malformed Parquet metadata: {} does not fit a 32-bit field", value);
  }
  return static_cast<int32_t>(value);
}

ParquetSchemaElement read_schema_element(ThriftCompactReader& reader) {
  ParquetSchemaElement element;
  reader.read_struct([&](int16_t id, Field type) {
    switch (id) {
      case 1: element.type = read_i32(reader, type); break;
      case 3: element.repetition = read_i32(reader, type); break;
      case 4: element.name = reader.read_binary(); break;
      case 5: element.num_children = read_i32(reader, type); break;
      default: reader.skip(type);
    }
  });
  return element;
}

ParquetColumnChunk read_column_metadata(ThriftCompactReader& reader) {
  ParquetColumnChunk chunk;
  reader.read_struct([&](int16_t id, Field type) {
    switch (id) {
      case 1: chunk.type = read_i32(reader, type); break;
      case 3: chunk.path = read_list<std::string>(reader, [&] { return reader.read_binary(); }); break;
      case 4: chunk.codec = read_i32(reader, type); break;
      case 5: chunk.num_values = reader.read_integer(type); break;
      case 7: chunk.total_compressed_size = reader.read_integer(type); break;
      case 9: chunk.data_page_offset = reader.read_integer(type); break;
      case 11: chunk.dictionary_page_offset = reader.read_integer(type); break;
      default: reader.skip(type);
    }
  });
  return chunk;
}

ParquetColumnChunk read_column_chunk(ThriftCompactReader& reader) {
  ParquetColumnChunk chunk;
  bool has_metadata = false;
  reader.read_struct([&](int16_t id, Field type) {
    if (id == 1) fail("a column chunk stored in another file ('{}') is not supported", reader.read_binary());
    if (id == 3) {
      chunk = read_column_metadata(reader);
      has_metadata = true;
    } else {
      reader.skip(type);
    }
  });
  if (!has_metadata) fail("malformed Parquet metadata: a column chunk without its metadata");
  return chunk;
}

ParquetRowGroup read_row_group(ThriftCompactReader& reader) {
  ParquetRowGroup group;
  reader.read_struct([&](int16_t id, Field type) {
    if (id == 1) {
      group.columns = read_list<ParquetColumnChunk>(reader, [&] { return read_column_chunk(reader); });
    } else if (id == 3) {
      group.num_rows = reader.read_integer(type);
    } else {
      reader.skip(type);
    }
  });
  return group;
}

void read_data_page_header(ThriftCompactReader& reader, ParquetPageHeader& page) {
  reader.read_struct([&](int16_t id, Field type) {
    switch (id) {
      case 1: page.num_values = read_i32(reader, type); break;
      case 2: page.encoding = read_i32(reader, type); break;
      case 3: page.definition_level_encoding = read_i32(reader, type); break;
      default: reader.skip(type);
    }
  });
}

void read_dictionary_page_header(ThriftCompactReader& reader, ParquetPageHeader& page) {
  reader.read_struct([&](int16_t id, Field type) {
    switch (id) {
      case 1: page.num_values = read_i32(reader, type); break;
      case 2: page.encoding = read_i32(reader, type); break;
      default: reader.skip(type);
    }
  });
}

void read_data_page_header_v2(ThriftCompactReader& reader, ParquetPageHeader& page) {
  reader.read_struct([&](int16_t id, Field type) {
    switch (id) {
      case 1: page.num_values = read_i32(reader, type); break;
      case 4: page.encoding = read_i32(reader, type); break;
      case 5: page.definition_levels_bytes = read_i32(reader, type); break;
      case 6: page.repetition_levels_bytes = read_i32(reader, type); break;
      case 7: page.values_compressed = reader.read_bool(type); break;
      default: reader.skip(type);
    }
  });
}

}  // namespace

std::string parquet_type_name(int32_t type) {
  static const char* const names[] = {"BOOLEAN", "INT32", "INT64",     "INT96",
                                      "FLOAT",   "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};
  if (type == -1) return "a group";
  return type >= 0 && type < 8 ? names[type] : fmt::format("type {}", type);
}

std::string parquet_encoding_name(int32_t encoding) {
  static const char* const names[] = {"PLAIN",
                                      "GROUP_VAR_INT",
                                      "PLAIN_DICTIONARY",
                                      "RLE",
                                      "BIT_PACKED",
                                      "DELTA_BINARY_PACKED",
                                      "DELTA_LENGTH_BYTE_ARRAY",
                                      "DELTA_BYTE_ARRAY",
                                      "RLE_DICTIONARY",
                                      "BYTE_STREAM_SPLIT"};
  return encoding >= 0 && encoding < 10 ? names[encoding] : fmt::format("encoding {}", encoding);
}

std::string parquet_codec_name(int32_t codec) {
  static const char* const names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"};
  return codec >= 0 && codec < 8 ? names[codec] : fmt::format("codec {}", codec);
}

ParquetFileMetadata parse_parquet_file_metadata(const uint8_t* data, size_t size) {
  ThriftCompactReader reader(data, size);
  ParquetFileMetadata metadata;
  reader.read_struct([&](int16_t id, Field type) {
    switch (id) {
      case 2:
        metadata.schema = read_list<ParquetSchemaElement>(reader, [&] { return read_schema_element(reader); });
        break;
      case 3: metadata.num_rows = reader.read_integer(type); break;
      case 4:
        metadata.row_groups = read_list<ParquetRowGroup>(reader, [&] { return read_row_group(reader); });
        break;
      default: reader.skip(type);
    }
  });
  if (metadata.schema.empty()) fail("malformed Parquet metadata: the schema is empty");
  return metadata;
}

ParquetPageHeader parse_parquet_page_header(ThriftCompactReader& reader) {
  ParquetPageHeader page;
  reader.read_struct([&](int16_t id, Field type) {
    switch (id) {
      case 1: page.type = read_i32(reader, type); break;
      case 2: page.uncompressed_size = read_i32(reader, type); break;
      case 3: page.compressed_size = read_i32(reader, type); break;
      case 5: read_data_page_header(reader, page); break;
      case 7: read_dictionary_page_header(reader, page); break;
      case 8: read_data_page_header_v2(reader, page); break;
      default: reader.skip(type);
    }
  });
  if (page.compressed_size < 0 || page.uncompressed_size < 0 || page.num_values < 0 ||
      page.definition_levels_bytes < 0 || page.repetition_levels_bytes < 0) {
    fail("malformed Parquet page header: a negative size or count");
  }
  return page;
}

}  // namespace muonlab::data
