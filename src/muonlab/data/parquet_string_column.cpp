#include "muonlab/data/parquet_string_column.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <vector>

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

#include "muonlab/core/errors.h"
#include "muonlab/data/parquet_codecs.h"
#include "muonlab/data/parquet_encodings.h"
#include "muonlab/data/parquet_metadata.h"

namespace muonlab::data {

namespace parquet_reading {

// The levels of a column's values (Dremel's encoding, as Parquet stores
// nesting): a slot's definition level says how much of its path is present,
// its repetition level whether it continues the row before it. A string
// column has at most a definition level (null or not); a list column both.
struct ParquetLevels {
  int max_definition = 0;       // a value is present
  int max_repetition = 0;       // 1 for a list, 0 for a string per row
  int field_definition = 0;     // below it, the row's field is null
  int repeated_definition = 0;  // lists: below it (and not null), the list is empty
};

// Where the column sits and how its values nest: its leaf's index among
// the leaves (the column chunks of every row group, in schema order), its
// path, and the definition and repetition levels that place each value.
struct ColumnPlace {
  size_t leaf = 0;
  std::vector<std::string> path;  // path_in_schema: {"text"}, {"endings", "list", "element"}
  ParquetLevels levels;
};

}  // namespace parquet_reading

namespace {

namespace code = parquet_code;
using parquet_reading::ColumnPlace;
using parquet_reading::ParquetLevels;

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

// Bits a level up to `max_level` takes in the RLE / bit-packed hybrid.
int level_bit_width(int max_level) {
  int bits = 0;
  while ((1 << bits) <= max_level) ++bits;
  return bits;
}

// The field at schema[index] and the groups under it, down to its leaf: a
// string, or a list of strings (a chain of single-child groups, one of them,
// or the leaf, repeated: Arrow's and Hugging Face's list<string> and the
// older two-level lists).
ColumnPlace place_of_field(const std::vector<ParquetSchemaElement>& schema, size_t index, const std::string& path) {
  ColumnPlace place;
  int repeated = 0;
  for (;; ++index) {
    const ParquetSchemaElement& element = schema[index];
    place.path.push_back(element.name);
    if (element.repetition == code::kOptional || element.repetition == code::kRepeated) ++place.levels.max_definition;
    if (place.path.size() == 1) place.levels.field_definition = element.repetition == code::kOptional ? 1 : 0;
    if (element.repetition == code::kRepeated) {
      ++repeated;
      place.levels.repeated_definition = place.levels.max_definition;
    }
    if (element.num_children == 0) break;
    if (element.num_children != 1) {
      fail("'{}': column '{}' is nested (a group of {} fields): expected strings or a list of strings", path,
           place.path.front(), element.num_children);
    }
  }
  const ParquetSchemaElement& leaf = schema[index];
  if (repeated > 1) fail("'{}': column '{}' is a list of lists: expected strings or a list of strings", path,
                         place.path.front());
  if (leaf.type != code::kByteArray) {
    fail("'{}': column '{}' holds {} values, expected strings (BYTE_ARRAY)", path, place.path.front(),
         parquet_type_name(leaf.type));
  }
  place.levels.max_repetition = repeated;
  return place;
}

// Walks the schema's top-level fields (element 0 is the root; a group's
// descendants follow it depth first), counting leaves on the way.
ColumnPlace find_column(const ParquetFileMetadata& metadata, const std::string& column, const std::string& path) {
  const auto& schema = metadata.schema;
  std::vector<std::string> names;
  size_t index = 1, leaves = 0;
  for (int32_t field = 0; field < schema[0].num_children; ++field) {
    if (index >= schema.size()) fail("'{}': malformed Parquet schema: fewer elements than it counts", path);
    const size_t field_index = index, first_leaf = leaves;
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
    if (schema[field_index].name == column) {
      ColumnPlace place = place_of_field(schema, field_index, path);
      place.leaf = first_leaf;
      return place;
    }
    names.push_back(schema[field_index].name);
  }
  throw ParquetMissingColumn(fmt::format("'{}' has no column '{}' (its columns: {})", path, column,
                                         fmt::join(names, ", ")));
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

// One data page's slots: a row each in a string column; in a list column an
// element each, or one for a row whose list is null or empty. Their texts
// back to back, and where each ends, or a marker for a slot without one.
struct PageSlots {
  static constexpr uint64_t kNullRow = UINT64_MAX;  // the row's field is null
  static constexpr uint64_t kEmptyList = UINT64_MAX - 1;
  static constexpr uint64_t kNullElement = UINT64_MAX - 2;
  std::string texts;
  std::vector<uint64_t> ends;
  std::vector<uint8_t> continues_row;  // 1 where a slot continues the row of the slot before (lists)
  size_t next = 0;       // the slot to serve next
  uint64_t text_at = 0;  // where the next text starts

  void clear() {
    texts.clear();
    ends.clear();
    continues_row.clear();
    next = 0;
    text_at = 0;
  }
  void add(std::string_view text, bool continues) {
    texts.append(text);
    ends.push_back(texts.size());
    continues_row.push_back(continues);
  }
  void add_missing(uint64_t marker, bool continues) {
    ends.push_back(marker);
    continues_row.push_back(continues);
  }
};

// Reads one column chunk's pages in order, a data page's rows at a time.
//
// Pages are read from the file one at a time, so that memory holds one page
// (and the dictionary), not the chunk: a row group of a million web pages
// is gigabytes.
class ColumnChunkReader {
 public:
  // The chunk's bytes are [start, end) of `file`.
  ColumnChunkReader(const ParquetColumnChunk& chunk, ParquetLevels levels, std::ifstream& file, std::string path,
                    uint64_t start, uint64_t end)
      : chunk_(chunk), levels_(levels), file_(file), path_(std::move(path)), offset_(start), end_(end) {}

  // Decodes the next data page into `slots` (dictionary and index pages on
  // the way are read or passed over); false once every value is read.
  bool next_page(PageSlots& slots) {
    slots.clear();
    while (values_read_ < chunk_.num_values) {
      const ParquetPageHeader page = read_page_header();
      if (static_cast<uint64_t>(page.compressed_size) > end_ - offset_) {
        fail("a page of {} bytes runs past the end of its column chunk", page.compressed_size);
      }
      const std::vector<uint8_t> data = read_range(file_, path_, offset_, page.compressed_size);
      offset_ += page.compressed_size;
      const bool data_page = page.type == code::kDataPage || page.type == code::kDataPageV2;
      read_page(page, {data.data(), data.size()}, slots);
      if (data_page) return true;
    }
    return false;
  }

  int64_t rows_read() const { return rows_read_; }

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

  void read_page(const ParquetPageHeader& page, ByteRange data, PageSlots& slots) {
    switch (page.type) {
      case code::kDictionaryPage:
        read_dictionary_page(page, data);
        break;
      case code::kDataPage:
      case code::kDataPageV2:
        read_data_page(page, data, slots);
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

  void read_data_page(const ParquetPageHeader& page, ByteRange data, PageSlots& slots) {
    if (page.num_values > kMaxPageValues) {
      fail("a page of {} values, more than muonlab reads in one ({})", page.num_values, kMaxPageValues);
    }
    if (page.num_values > chunk_.num_values - values_read_) {
      fail("its pages hold more values than its column chunk ({})", chunk_.num_values);
    }
    std::vector<uint8_t> decompressed;
    ByteRange repetition_levels, definition_levels, values;
    if (page.type == code::kDataPage) {
      decompressed = decompress_parquet_page(chunk_.codec, data, page.uncompressed_size);
      ByteRange rest{decompressed.data(), decompressed.size()};
      if (levels_.max_repetition > 0) repetition_levels = take_v1_levels(page, rest, "repetition");
      if (levels_.max_definition > 0) definition_levels = take_v1_levels(page, rest, "definition");
      values = rest;
    } else {
      const uint64_t level_bytes =
          static_cast<uint64_t>(page.definition_levels_bytes) + static_cast<uint64_t>(page.repetition_levels_bytes);
      if (level_bytes > data.size || level_bytes > static_cast<uint64_t>(page.uncompressed_size)) {
        fail("a v2 data page's levels ({} bytes) exceed the page", level_bytes);
      }
      // Repetition levels first, then definition levels.
      repetition_levels = {data.data, static_cast<size_t>(page.repetition_levels_bytes)};
      definition_levels = {data.data + page.repetition_levels_bytes, static_cast<size_t>(page.definition_levels_bytes)};
      const ByteRange stored{data.data + level_bytes, data.size - level_bytes};
      const size_t values_size = page.uncompressed_size - level_bytes;
      const bool compressed = page.values_compressed && chunk_.codec != code::kUncompressed;
      decompressed = decompress_parquet_page(compressed ? chunk_.codec : code::kUncompressed, stored, values_size);
      values = {decompressed.data(), decompressed.size()};
    }
    const auto levels = [&](ByteRange bytes, int max_level) {
      return max_level > 0 ? decode_rle_bit_packed(bytes, level_bit_width(max_level), page.num_values)
                           : std::vector<uint32_t>{};
    };
    collect(page, values, levels(definition_levels, levels_.max_definition),
            levels(repetition_levels, levels_.max_repetition), slots);
  }

  // A v1 page's levels of one kind: RLE behind a 4-byte length.
  ByteRange take_v1_levels(const ParquetPageHeader& page, ByteRange& rest, const char* kind) {
    if (page.definition_level_encoding != code::kRle) {
      fail("levels encoded {}, expected RLE", parquet_encoding_name(page.definition_level_encoding));
    }
    if (rest.size < 4) fail("a data page too short for its {} levels", kind);
    const uint32_t length = rest.data[0] | rest.data[1] << 8 | rest.data[2] << 16 |
                            static_cast<uint32_t>(rest.data[3]) << 24;
    if (length > rest.size - 4) fail("{} levels of {} bytes run past their page", kind, length);
    const ByteRange levels{rest.data + 4, length};
    rest = {rest.data + 4 + length, rest.size - 4 - length};
    return levels;
  }

  // What a slot whose definition level is below the maximum stands for.
  uint64_t missing_marker(uint32_t definition) const {
    if (definition < static_cast<uint32_t>(levels_.field_definition)) return PageSlots::kNullRow;
    if (definition < static_cast<uint32_t>(levels_.repeated_definition)) return PageSlots::kEmptyList;
    return PageSlots::kNullElement;
  }

  // The page's slots: a value where the definition level is the column's
  // maximum (the next decoded value), else what is missing.
  void collect(const ParquetPageHeader& page, ByteRange values, const std::vector<uint32_t>& definitions,
               const std::vector<uint32_t>& repetitions, PageSlots& slots) {
    const auto max_definition = static_cast<uint32_t>(levels_.max_definition);
    size_t level = 0, present = page.num_values;
    if (!definitions.empty()) present = std::count(definitions.begin(), definitions.end(), max_definition);
    const auto continues = [&] {
      const bool continued = !repetitions.empty() && repetitions[level] > 0;
      if (continued && rows_read_ == 0 && level == 0) fail("its first value continues a row before the chunk");
      return continued;
    };
    const auto add_missing = [&] {
      while (level < definitions.size() && definitions[level] != max_definition) {
        slots.add_missing(missing_marker(definitions[level]), continues());
        ++level;
      }
    };
    const ByteArrayVisitor add_value = [&](std::string_view value) {
      add_missing();
      slots.add(value, continues());
      ++level;
    };
    decode_values(page.encoding, values, present, add_value);
    add_missing();
    values_read_ += page.num_values;
    rows_read_ += repetitions.empty() ? page.num_values : std::count(repetitions.begin(), repetitions.end(), 0u);
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
  const ParquetLevels levels_;
  std::ifstream& file_;
  const std::string path_;
  uint64_t offset_;     // of the next page header, in the file
  const uint64_t end_;  // of the chunk
  std::vector<uint8_t> dictionary_page_;  // the bytes the dictionary's views point into
  std::vector<std::string_view> dictionary_;
  int64_t values_read_ = 0;  // level slots
  int64_t rows_read_ = 0;
};

// One slot of a column: a row of a string column; an element (or an empty
// or null list) of a list column.
struct ColumnSlot {
  bool continues_row = false;  // the slot belongs to the row of the slot before
  uint64_t kind = 0;           // PageSlots' marker, or 0 for a value
  std::string_view value;      // valid until the next slot
};

// A column read forward a slot at a time, over every row group.
class ColumnSlotReader {
 public:
  ColumnSlotReader(const std::string& path, const std::string& column) : path_(path), column_(column) {
    file_.open(path, std::ios::binary | std::ios::ate);
    if (!file_) fail("cannot open '{}': {}", path, std::strerror(errno));
    const auto file_size = static_cast<uint64_t>(file_.tellg());
    metadata_ = read_file_metadata(file_, path, file_size, data_end_);
    place_ = find_column(metadata_, column, path);
  }

  const ParquetLevels& levels() const { return place_.levels; }
  std::string where() const { return fmt::format("'{}', column '{}', row group {}", path_, column_, group_); }

  // The next slot; false after the last.
  bool next(ColumnSlot& slot) {
    while (page_.next >= page_.ends.size()) {
      if (chunk_) {
        try {
          if (chunk_->next_page(page_)) continue;
        } catch (const Error& error) {
          fail("{}: {}", where(), error.what());
        }
      }
      if (!open_next_group()) return false;
    }
    const uint64_t end = page_.ends[page_.next];
    slot.continues_row = page_.continues_row[page_.next] != 0;
    slot.kind = end >= PageSlots::kNullElement ? end : 0;
    if (slot.kind == 0) {
      slot.value = std::string_view(page_.texts).substr(page_.text_at, end - page_.text_at);
      page_.text_at = end;
    }
    ++page_.next;
    return true;
  }

 private:
  // Starts the next row group's column chunk; false after the last.
  bool open_next_group() {
    if (chunk_ && chunk_->rows_read() != metadata_.row_groups[group_].num_rows) {
      fail("{}: {} rows where the row group has {}", where(), chunk_->rows_read(),
           metadata_.row_groups[group_].num_rows);
    }
    chunk_.reset();
    if (++group_ >= static_cast<int64_t>(metadata_.row_groups.size())) return false;
    const ParquetRowGroup& row_group = metadata_.row_groups[group_];
    if (place_.leaf >= row_group.columns.size() || row_group.columns[place_.leaf].path != place_.path) {
      fail("{}: malformed metadata: the column chunks do not follow the schema", where());
    }
    const ParquetColumnChunk& column_chunk = row_group.columns[place_.leaf];
    try {
      const auto [start, size] = chunk_range(column_chunk, data_end_);
      chunk_ = std::make_unique<ColumnChunkReader>(column_chunk, place_.levels, file_, path_, start, start + size);
    } catch (const Error& error) {
      fail("{}: {}", where(), error.what());
    }
    return true;
  }

  std::string path_, column_;
  std::ifstream file_;
  ParquetFileMetadata metadata_;
  uint64_t data_end_ = 0;
  ColumnPlace place_;
  int64_t group_ = -1;  // the row group being read
  std::unique_ptr<ColumnChunkReader> chunk_;
  PageSlots page_;
};

}  // namespace parquet_reading

struct ParquetStringColumnReader::State {
  parquet_reading::ColumnSlotReader slots;
  parquet_reading::ColumnSlot slot;
  int64_t row = -1;

  State(const std::string& path, const std::string& column) : slots(path, column) {
    if (slots.levels().max_repetition > 0) {
      fail("'{}': column '{}' is a list (repeated): expected a string per row", path, column);
    }
  }
};

ParquetStringColumnReader::ParquetStringColumnReader(const std::string& path, const std::string& column)
    : state_(std::make_unique<State>(path, column)) {}

ParquetStringColumnReader::~ParquetStringColumnReader() = default;
ParquetStringColumnReader::ParquetStringColumnReader(ParquetStringColumnReader&&) noexcept = default;
ParquetStringColumnReader& ParquetStringColumnReader::operator=(ParquetStringColumnReader&&) noexcept = default;

bool ParquetStringColumnReader::next() {
  if (!state_->slots.next(state_->slot)) return false;
  ++state_->row;
  return true;
}
int64_t ParquetStringColumnReader::row() const { return state_->row; }
const std::string_view* ParquetStringColumnReader::value() const {
  return state_->slot.kind == 0 ? &state_->slot.value : nullptr;
}

int64_t read_parquet_string_column(const std::string& path, const std::string& column,
                                   const ParquetStringVisitor& visit) {
  ParquetStringColumnReader reader(path, column);
  while (reader.next()) visit(reader.value());
  return reader.row() + 1;
}

int64_t read_parquet_string_list_column(const std::string& path, const std::string& column,
                                        const ParquetStringListVisitor& visit) {
  parquet_reading::ColumnSlotReader slots(path, column);
  if (slots.levels().max_repetition == 0) {
    fail("'{}': column '{}' holds a string per row, expected a list of strings", path, column);
  }
  ParquetStringList row;
  bool in_row = false, row_null = false;
  int64_t rows = 0;
  const auto finish_row = [&] {
    visit(row_null ? nullptr : &row);
    row.clear();
    row_null = false;
    ++rows;
  };
  using parquet_reading::PageSlots;
  for (parquet_reading::ColumnSlot slot; slots.next(slot);) {
    if (!slot.continues_row) {
      if (in_row) finish_row();
      in_row = true;
    }
    if (slot.kind == PageSlots::kNullRow) {
      row_null = true;
    } else if (slot.kind == PageSlots::kNullElement) {
      row.emplace_back(std::nullopt);
    } else if (slot.kind == 0) {
      row.emplace_back(std::string(slot.value));
    }  // kEmptyList: the row has no elements
  }
  if (in_row) finish_row();
  return rows;
}

}  // namespace muonlab::data
