#include "muonlab/data/parquet_string_column.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

#include "muonlab/core/errors.h"
#include "muonlab/data/parquet_codecs.h"
#include "muonlab/data/parquet_encodings.h"
#include "muonlab/data/parquet_metadata.h"

namespace muonlab::data {
namespace {

namespace code = parquet_code;

constexpr char kParquetMagic[] = "PAR1";
// More values than common writers put in one page (pyarrow and the Rust
// writer: 20,000 rows) by far; a bound against a hostile header.
constexpr int32_t kMaxPageValues = 1 << 24;

std::vector<uint8_t> read_range(std::ifstream& file, const std::string& path, uint64_t offset, uint64_t size) {
  std::vector<uint8_t> bytes(size);
  file.seekg(static_cast<std::streamoff>(offset));
  file.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (file.gcount() != static_cast<std::streamsize>(size)) {
    fail("cannot read {} bytes at byte {} of '{}'", size, offset, path);
  }
  return bytes;
}

// Where the column sits: its schema element, and its index among the
// leaves (the column chunks of every row group, in schema order).
struct ColumnPlace {
  const ParquetSchemaElement* element = nullptr;
  size_t leaf = 0;
};

// Walks the schema's top-level fields (element 0 is the root; a group's
// descendants follow it depth first), counting leaves on the way.
ColumnPlace find_column(const ParquetFileMetadata& metadata, const std::string& column, const std::string& path) {
  const auto& schema = metadata.schema;
  std::vector<std::string> names;
  size_t index = 1, leaves = 0;
  for (int32_t field = 0; field < schema[0].num_children; ++field) {
    if (index >= schema.size()) fail("'{}': malformed Parquet schema: fewer elements than it counts", path);
    const ParquetSchemaElement& element = schema[index];
    const size_t first_leaf = leaves;
    // A group's subtree: elements still to visit, leaves among them.
    size_t pending = 1;
    while (pending > 0) {
      if (index >= schema.size()) fail("'{}': malformed Parquet schema: fewer elements than it counts", path);
      const int32_t children = schema[index].num_children;
      if (children < 0 || static_cast<size_t>(children) > schema.size()) {
        fail("'{}': malformed Parquet schema: {} children", path, children);
      }
      pending += children - 1;
      leaves += children == 0;
      ++index;
    }
    if (element.name == column) {
      if (element.num_children > 0) {
        fail("'{}': column '{}' is nested (a group of {} fields): expected a top-level string column", path, column,
             element.num_children);
      }
      if (element.repetition == code::kRepeated) {
        fail("'{}': column '{}' is a list (repeated): expected a string per row", path, column);
      }
      if (element.type != code::kByteArray) {
        fail("'{}': column '{}' holds {} values, expected strings (BYTE_ARRAY)", path, column,
             parquet_type_name(element.type));
      }
      return {&element, first_leaf};
    }
    names.push_back(element.name);
  }
  fail("'{}' has no column '{}' (its columns: {}); name the documents' column with --field", path, column,
       fmt::join(names, ", "));
}

// The footer's metadata; `data_end` gets where the data before it ends.
ParquetFileMetadata read_file_metadata(std::ifstream& file, const std::string& path, uint64_t file_size,
                                       uint64_t& data_end) {
  if (file_size < 12) fail("'{}' is not a Parquet file: {} bytes, too short for one", path, file_size);
  const std::vector<uint8_t> head = read_range(file, path, 0, 4);
  const std::vector<uint8_t> tail = read_range(file, path, file_size - 8, 8);
  if (std::memcmp(tail.data() + 4, "PARE", 4) == 0) {
    fail("'{}' is an encrypted Parquet file, which muonlab cannot read", path);
  }
  if (std::memcmp(head.data(), kParquetMagic, 4) != 0 || std::memcmp(tail.data() + 4, kParquetMagic, 4) != 0) {
    fail("'{}' is not a Parquet file: it does not start and end with \"PAR1\"", path);
  }
  const uint32_t footer_size = tail[0] | tail[1] << 8 | tail[2] << 16 | static_cast<uint32_t>(tail[3]) << 24;
  if (footer_size > file_size - 12) fail("'{}': its footer's size ({} bytes) exceeds the file", path, footer_size);
  data_end = file_size - 8 - footer_size;
  const std::vector<uint8_t> footer = read_range(file, path, data_end, footer_size);
  try {
    return parse_parquet_file_metadata(footer.data(), footer.size());
  } catch (const Error& error) {
    fail("'{}': {}", path, error.what());
  }
}

// The chunk's byte range: from its dictionary page if it has one (some
// writers store 0 for "none"), else from its first data page.
std::pair<uint64_t, uint64_t> chunk_range(const ParquetColumnChunk& chunk, uint64_t data_end) {
  int64_t start = chunk.data_page_offset;
  if (chunk.dictionary_page_offset >= 4 && chunk.dictionary_page_offset < start) start = chunk.dictionary_page_offset;
  if (start < 4 || chunk.total_compressed_size < 0 || static_cast<uint64_t>(start) > data_end ||
      static_cast<uint64_t>(chunk.total_compressed_size) > data_end - start) {
    fail("malformed metadata: a column chunk of {} bytes at byte {}, outside the file's data (bytes 4 to {})",
         chunk.total_compressed_size, start, data_end);
  }
  return {static_cast<uint64_t>(start), static_cast<uint64_t>(chunk.total_compressed_size)};
}

}  // namespace

// The reader's parts, named outside the anonymous namespace because the
// reader's state holds them.
namespace parquet_reading {

namespace code = parquet_code;

// One data page's rows: their texts back to back, and where each ends
// (kNullRow for a null).
struct PageRows {
  static constexpr uint64_t kNullRow = UINT64_MAX;
  std::string texts;
  std::vector<uint64_t> ends;
  size_t next = 0;       // the row to serve next
  uint64_t text_at = 0;  // where the next text starts

  void clear() {
    texts.clear();
    ends.clear();
    next = 0;
    text_at = 0;
  }
  void add(std::string_view text) {
    texts.append(text);
    ends.push_back(texts.size());
  }
  void add_null() { ends.push_back(kNullRow); }
};

// Reads one column chunk's pages in order, a data page's rows at a time.
//
// Pages are read from the file one at a time, so that memory holds one page
// (and the dictionary), not the chunk: a row group of a million web pages
// is gigabytes.
class ColumnChunkReader {
 public:
  // The chunk's bytes are [start, end) of `file`.
  ColumnChunkReader(const ParquetColumnChunk& chunk, int max_definition, std::ifstream& file, std::string path,
                    uint64_t start, uint64_t end)
      : chunk_(chunk), max_definition_(max_definition), file_(file), path_(std::move(path)), offset_(start),
        end_(end) {}

  // Decodes the next data page into `rows` (dictionary and index pages on
  // the way are read or passed over); false once every value is read.
  bool next_page(PageRows& rows) {
    rows.clear();
    while (values_read_ < chunk_.num_values) {
      const ParquetPageHeader page = read_page_header();
      if (static_cast<uint64_t>(page.compressed_size) > end_ - offset_) {
        fail("a page of {} bytes runs past the end of its column chunk", page.compressed_size);
      }
      const std::vector<uint8_t> data = read_range(file_, path_, offset_, page.compressed_size);
      offset_ += page.compressed_size;
      const bool data_page = page.type == code::kDataPage || page.type == code::kDataPageV2;
      read_page(page, {data.data(), data.size()}, rows);
      if (data_page) return true;
    }
    return false;
  }

  int64_t values_read() const { return values_read_; }

 private:
  // The page header at offset_, which moves past it. A header's size is
  // known only once parsed: it is parsed from a window of the chunk, made
  // larger while the header runs past it (long statistics), up to the
  // chunk's end, where a header that still runs past is malformed.
  ParquetPageHeader read_page_header() {
    for (uint64_t window = std::min<uint64_t>(kHeaderWindow, end_ - offset_);; window *= 4) {
      window = std::min(window, end_ - offset_);
      const std::vector<uint8_t> bytes = read_range(file_, path_, offset_, window);
      ThriftCompactReader reader(bytes.data(), bytes.size());
      try {
        const ParquetPageHeader page = parse_parquet_page_header(reader);
        offset_ += reader.position();
        return page;
      } catch (const Error&) {
        if (window == end_ - offset_) throw;
      }
    }
  }

  static constexpr uint64_t kHeaderWindow = 16 * 1024;

  void read_page(const ParquetPageHeader& page, ByteRange data, PageRows& rows) {
    switch (page.type) {
      case code::kDictionaryPage:
        read_dictionary_page(page, data);
        break;
      case code::kDataPage:
      case code::kDataPageV2:
        read_data_page(page, data, rows);
        break;
      default:
        break;  // index pages and unknown kinds hold no values
    }
  }

  void read_dictionary_page(const ParquetPageHeader& page, ByteRange data) {
    if (page.encoding != code::kPlain && page.encoding != code::kPlainDictionary) {
      fail("a dictionary page encoded {}, expected PLAIN", parquet_encoding_name(page.encoding));
    }
    dictionary_page_ = decompress_parquet_page(chunk_.codec, data, page.uncompressed_size);
    dictionary_.clear();
    decode_plain_byte_arrays({dictionary_page_.data(), dictionary_page_.size()}, page.num_values,
                             [this](std::string_view value) { dictionary_.push_back(value); });
  }

  void read_data_page(const ParquetPageHeader& page, ByteRange data, PageRows& rows) {
    if (page.num_values > kMaxPageValues) {
      fail("a page of {} values, more than muonlab reads in one ({})", page.num_values, kMaxPageValues);
    }
    if (page.num_values > chunk_.num_values - values_read_) {
      fail("its pages hold more values than its column chunk ({})", chunk_.num_values);
    }
    std::vector<uint8_t> decompressed;
    ByteRange levels, values;
    if (page.type == code::kDataPage) {
      decompressed = decompress_parquet_page(chunk_.codec, data, page.uncompressed_size);
      ByteRange rest{decompressed.data(), decompressed.size()};
      if (max_definition_ > 0) levels = take_v1_levels(page, rest);
      values = rest;
    } else {
      const uint64_t level_bytes =
          static_cast<uint64_t>(page.definition_levels_bytes) + static_cast<uint64_t>(page.repetition_levels_bytes);
      if (level_bytes > data.size || level_bytes > static_cast<uint64_t>(page.uncompressed_size)) {
        fail("a v2 data page's levels ({} bytes) exceed the page", level_bytes);
      }
      levels = {data.data, static_cast<size_t>(page.definition_levels_bytes)};
      const ByteRange stored{data.data + level_bytes, data.size - level_bytes};
      const size_t values_size = page.uncompressed_size - level_bytes;
      const bool compressed = page.values_compressed && chunk_.codec != code::kUncompressed;
      decompressed = decompress_parquet_page(compressed ? chunk_.codec : code::kUncompressed, stored, values_size);
      values = {decompressed.data(), decompressed.size()};
    }
    std::vector<uint32_t> definitions;
    if (max_definition_ > 0) definitions = decode_rle_bit_packed(levels, 1, page.num_values);
    collect(page, values, definitions, rows);
  }

  // A v1 page's definition levels: RLE behind a 4-byte length.
  ByteRange take_v1_levels(const ParquetPageHeader& page, ByteRange& rest) {
    if (page.definition_level_encoding != code::kRle) {
      fail("definition levels encoded {}, expected RLE", parquet_encoding_name(page.definition_level_encoding));
    }
    if (rest.size < 4) fail("a data page too short for its definition levels");
    const uint32_t length = rest.data[0] | rest.data[1] << 8 | rest.data[2] << 16 |
                            static_cast<uint32_t>(rest.data[3]) << 24;
    if (length > rest.size - 4) fail("definition levels of {} bytes run past their page", length);
    const ByteRange levels{rest.data + 4, length};
    rest = {rest.data + 4 + length, rest.size - 4 - length};
    return levels;
  }

  // The page's rows: a null where a row's definition level is below the
  // column's maximum, else the next decoded value.
  void collect(const ParquetPageHeader& page, ByteRange values, const std::vector<uint32_t>& definitions,
               PageRows& rows) {
    size_t level = 0, present = page.num_values;
    if (!definitions.empty()) {
      present = 0;
      for (uint32_t definition : definitions) present += definition == static_cast<uint32_t>(max_definition_);
    }
    const auto add_nulls = [&] {
      while (level < definitions.size() && definitions[level] != static_cast<uint32_t>(max_definition_)) {
        rows.add_null();
        ++level;
      }
    };
    const ByteArrayVisitor add_value = [&](std::string_view value) {
      add_nulls();
      rows.add(value);
      ++level;
    };
    decode_values(page.encoding, values, present, add_value);
    add_nulls();
    values_read_ += page.num_values;
  }

  void decode_values(int32_t encoding, ByteRange values, size_t count, const ByteArrayVisitor& visit) {
    switch (encoding) {
      case code::kPlain:
        decode_plain_byte_arrays(values, count, visit);
        return;
      case code::kPlainDictionary:
      case code::kRleDictionary:
        decode_dictionary_indices(values, count, visit);
        return;
      case code::kDeltaLengthByteArray:
        decode_delta_length_byte_arrays(values, count, visit);
        return;
      case code::kDeltaByteArray:
        decode_delta_byte_arrays(values, count, visit);
        return;
      default:
        fail("values encoded {}, which muonlab does not read for strings", parquet_encoding_name(encoding));
    }
  }

  // A bit width byte, then the indices into the dictionary page, RLE.
  void decode_dictionary_indices(ByteRange values, size_t count, const ByteArrayVisitor& visit) {
    if (count == 0) return;
    if (values.size == 0) fail("a dictionary-encoded page without its bit width");
    if (dictionary_page_.empty() && dictionary_.empty()) fail("dictionary-encoded values before a dictionary page");
    const std::vector<uint32_t> indices = decode_rle_bit_packed({values.data + 1, values.size - 1}, values.data[0],
                                                                count);
    for (uint32_t index : indices) {
      if (index >= dictionary_.size()) {
        fail("dictionary index {} past the dictionary's {} entries", index, dictionary_.size());
      }
      visit(dictionary_[index]);
    }
  }

  const ParquetColumnChunk& chunk_;
  const int max_definition_;
  std::ifstream& file_;
  const std::string path_;
  uint64_t offset_;     // of the next page header, in the file
  const uint64_t end_;  // of the chunk
  std::vector<uint8_t> dictionary_page_;  // the bytes the dictionary's views point into
  std::vector<std::string_view> dictionary_;
  int64_t values_read_ = 0;
};

}  // namespace parquet_reading

struct ParquetStringColumnReader::State {
  std::string path, column;
  std::ifstream file;
  ParquetFileMetadata metadata;
  uint64_t data_end = 0;
  size_t leaf = 0;
  int max_definition = 0;
  int64_t group = -1;  // the row group being read
  std::unique_ptr<parquet_reading::ColumnChunkReader> chunk;
  parquet_reading::PageRows page;
  int64_t row = -1;
  std::string_view value;
  bool null = false;

  std::string where() const { return fmt::format("'{}', column '{}', row group {}", path, column, group); }

  // Starts the next row group's column chunk; false after the last.
  bool open_next_group() {
    if (chunk && chunk->values_read() != metadata.row_groups[group].num_rows) {
      fail("{}: {} values where the row group has {} rows", where(), chunk->values_read(),
           metadata.row_groups[group].num_rows);
    }
    chunk.reset();
    if (++group >= static_cast<int64_t>(metadata.row_groups.size())) return false;
    const ParquetRowGroup& row_group = metadata.row_groups[group];
    if (leaf >= row_group.columns.size() || row_group.columns[leaf].path != std::vector{column}) {
      fail("{}: malformed metadata: the column chunks do not follow the schema", where());
    }
    const ParquetColumnChunk& column_chunk = row_group.columns[leaf];
    try {
      const auto [start, size] = chunk_range(column_chunk, data_end);
      chunk = std::make_unique<parquet_reading::ColumnChunkReader>(column_chunk, max_definition, file, path, start,
                                                                   start + size);
    } catch (const Error& error) {
      fail("{}: {}", where(), error.what());
    }
    return true;
  }

  bool next() {
    while (page.next >= page.ends.size()) {
      if (chunk) {
        try {
          if (chunk->next_page(page)) continue;
        } catch (const Error& error) {
          fail("{}: {}", where(), error.what());
        }
      }
      if (!open_next_group()) return false;
    }
    const uint64_t end = page.ends[page.next];
    null = end == parquet_reading::PageRows::kNullRow;
    if (!null) {
      value = std::string_view(page.texts).substr(page.text_at, end - page.text_at);
      page.text_at = end;
    }
    ++page.next;
    ++row;
    return true;
  }
};

ParquetStringColumnReader::ParquetStringColumnReader(const std::string& path, const std::string& column)
    : state_(std::make_unique<State>()) {
  State& state = *state_;
  state.path = path;
  state.column = column;
  state.file.open(path, std::ios::binary | std::ios::ate);
  if (!state.file) fail("cannot open '{}': {}", path, std::strerror(errno));
  const auto file_size = static_cast<uint64_t>(state.file.tellg());
  state.metadata = read_file_metadata(state.file, path, file_size, state.data_end);
  const ColumnPlace place = find_column(state.metadata, column, path);
  state.leaf = place.leaf;
  state.max_definition = place.element->repetition == code::kOptional ? 1 : 0;
}

ParquetStringColumnReader::~ParquetStringColumnReader() = default;
ParquetStringColumnReader::ParquetStringColumnReader(ParquetStringColumnReader&&) noexcept = default;
ParquetStringColumnReader& ParquetStringColumnReader::operator=(ParquetStringColumnReader&&) noexcept = default;

bool ParquetStringColumnReader::next() { return state_->next(); }
int64_t ParquetStringColumnReader::row() const { return state_->row; }
const std::string_view* ParquetStringColumnReader::value() const { return state_->null ? nullptr : &state_->value; }

int64_t read_parquet_string_column(const std::string& path, const std::string& column,
                                   const ParquetStringVisitor& visit) {
  ParquetStringColumnReader reader(path, column);
  while (reader.next()) visit(reader.value());
  return reader.row() + 1;
}

}  // namespace muonlab::data
