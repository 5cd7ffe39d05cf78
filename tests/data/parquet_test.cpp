// Parquet's string columns against the documents they were written from:
// tests/data/parquet holds files that the Apache Arrow Rust writer made
// (make_files.mjs) from the documents of documents.jsonl, each in another
// layout (codecs, dictionary and plain pages, data pages v1 and v2, several
// pages and row groups, delta encodings). Every layout must give exactly
// those texts, row by row, with the one null where it was written.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <random>

#include "data/data_test_util.h"
#include "muonlab/core/errors.h"
#include "muonlab/data/parquet_codecs.h"
#include "muonlab/data/parquet_encodings.h"
#include "muonlab/data/parquet_metadata.h"
#include "muonlab/data/parquet_string_column.h"
#include "muonlab/data/text_documents.h"
#include "test_util.h"

namespace muonlab::data {
namespace {

constexpr int64_t kRows = 300;
constexpr int64_t kNullRow = 11;  // the row whose text the generator left null

std::string parquet_file(const std::string& name) { return testing::test_data("parquet/" + name + ".parquet"); }

std::vector<std::optional<std::string>> read_column(const std::string& path, const std::string& column) {
  std::vector<std::optional<std::string>> values;
  const int64_t rows = read_parquet_string_column(path, column, [&](const std::string_view* value) {
    values.push_back(value ? std::optional<std::string>(std::string(*value)) : std::nullopt);
  });
  EXPECT_EQ(rows, static_cast<int64_t>(values.size()));
  return values;
}

// id -> text, from the JSON Lines file the Parquet files were written with.
std::map<int64_t, std::string> written_documents() {
  std::map<int64_t, std::string> documents;
  std::istringstream lines(testing::read_bytes(testing::test_data("parquet/documents.jsonl")));
  for (std::string line; std::getline(lines, line);) {
    const auto object = nlohmann::json::parse(line);
    documents[object["id"].get<int64_t>()] = object["text"].get<std::string>();
  }
  return documents;
}

ParquetFileMetadata file_metadata(const std::string& path) {
  const std::string bytes = testing::read_bytes(path);
  uint32_t footer = 0;  // little-endian, before the closing "PAR1"
  for (int i = 0; i < 4; ++i) footer |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[bytes.size() - 8 + i])) << 8 * i;
  return parse_parquet_file_metadata(reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size() - 8 - footer,
                                     footer);
}

int32_t codec_of(const std::string& path) { return file_metadata(path).row_groups.at(0).columns.at(1).codec; }

class ParquetLayout : public ::testing::TestWithParam<const char*> {};

TEST_P(ParquetLayout, GivesTheWrittenTextsRowByRow) {
  const std::string path = parquet_file(GetParam());
  const int32_t codec = codec_of(path);
  if (!parquet_codec_supported(codec)) GTEST_SKIP() << "this build does not read " << parquet_codec_name(codec);
  const auto documents = written_documents();
  ASSERT_EQ(documents.size(), kRows - 1);
  const auto texts = read_column(path, "text");
  ASSERT_EQ(texts.size(), kRows);
  for (int64_t row = 0; row < kRows; ++row) {
    if (row == kNullRow) {
      EXPECT_FALSE(texts[row].has_value()) << "row " << row;
    } else {
      ASSERT_TRUE(texts[row].has_value()) << "row " << row;
      EXPECT_EQ(*texts[row], documents.at(row)) << "row " << row;
    }
  }
  // The url column: values repeated from a short list (dictionary pages
  // where the writer made them), no nulls.
  const auto urls = read_column(path, "url");
  ASSERT_EQ(urls.size(), kRows);
  for (int64_t row = 0; row < kRows; ++row) EXPECT_EQ(urls[row], fmt::format("https://example.org/{}", row % 9));
}

INSTANTIATE_TEST_SUITE_P(WrittenByArrowRust, ParquetLayout,
                         ::testing::Values("snappy_dictionary_v1", "snappy_dictionary_v2", "zstd_plain_v2", "gzip_pages_row_groups",
                                           "delta_length_byte_array", "delta_byte_array", "brotli", "lz4_raw"));

// A column that cannot hold nulls (REQUIRED), whose pages have no
// definition levels: the first 40 documents but the null one.
TEST(ParquetFile, RequiredColumnsHaveNoDefinitionLevels) {
  const auto documents = written_documents();
  for (const char* name : {"required_v1", "required_v2"}) {
    SCOPED_TRACE(name);
    const std::string path = parquet_file(name);
    ASSERT_EQ(file_metadata(path).schema.at(1).repetition, parquet_code::kRequired);
    const auto texts = read_column(path, "text");
    ASSERT_EQ(texts.size(), 39u);
    int64_t id = 0;
    for (const auto& text : texts) {
      if (id == kNullRow) ++id;
      ASSERT_TRUE(text.has_value());
      EXPECT_EQ(*text, documents.at(id)) << "id " << id;
      ++id;
    }
  }
}

// Lists of strings (list<utf8>) against the lists they were written from
// (string_lists.json): a null list, an empty list, a null element, lists of
// 400 elements over several pages, two row groups.
class ParquetStringLists : public ::testing::TestWithParam<const char*> {};

TEST_P(ParquetStringLists, GiveTheWrittenListsRowByRow) {
  const auto written = nlohmann::json::parse(testing::read_bytes(testing::test_data("parquet/string_lists.json")));
  const std::string path = parquet_file(GetParam());
  std::vector<std::optional<ParquetStringList>> rows;
  const int64_t count = read_parquet_string_list_column(path, "words", [&](const ParquetStringList* list) {
    rows.push_back(list ? std::optional<ParquetStringList>(*list) : std::nullopt);
  });
  ASSERT_EQ(count, static_cast<int64_t>(written.size()));
  ASSERT_EQ(rows.size(), written.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(i);
    if (written[i].is_null()) {
      EXPECT_FALSE(rows[i].has_value());
      continue;
    }
    ASSERT_TRUE(rows[i].has_value());
    ASSERT_EQ(rows[i]->size(), written[i].size());
    for (size_t k = 0; k < rows[i]->size(); ++k) {
      if (written[i][k].is_null()) {
        EXPECT_FALSE((*rows[i])[k].has_value()) << k;
      } else {
        EXPECT_EQ((*rows[i])[k].value_or("<null>"), written[i][k].get<std::string>()) << k;
      }
    }
  }
  // What the generator put where, so that each case is really in the file.
  EXPECT_FALSE(rows[4].has_value());
  EXPECT_TRUE(rows[9].has_value() && rows[9]->empty());
  EXPECT_FALSE(rows[13]->at(1).has_value());
  EXPECT_EQ(rows[31]->size(), 400u);
  const auto metadata = file_metadata(path);
  EXPECT_EQ(metadata.row_groups.size(), 2u);
  EXPECT_GT(metadata.row_groups[0].columns[1].num_values, metadata.row_groups[0].num_rows);  // more slots than rows
}

INSTANTIATE_TEST_SUITE_P(WrittenByArrowRust, ParquetStringLists,
                         ::testing::Values("string_lists_v1", "string_lists_v2"));

TEST(ParquetFile, StringAndListReadersNameEachOthersColumns) {
  const std::string lists = parquet_file("string_lists_v1");
  EXPECT_CONTAINS(testing::error_message([&] { read_column(lists, "words"); }),
                  "column 'words' is a list (repeated): expected a string per row");
  EXPECT_CONTAINS(testing::error_message([&] {
                    read_parquet_string_list_column(lists, "id", [](const ParquetStringList*) {});
                  }),
                  "column 'id' holds INT64 values, expected strings (BYTE_ARRAY)");
  const std::string texts = parquet_file("snappy_dictionary_v1");
  EXPECT_CONTAINS(testing::error_message([&] {
                    read_parquet_string_list_column(texts, "text", [](const ParquetStringList*) {});
                  }),
                  "column 'text' holds a string per row, expected a list of strings");
}

// The RLE / bit-packed hybrid reads only the bytes of the values wanted:
// none at bit width 0 (a dictionary of one entry), and a last run cut
// before its final group's padding, as parquet-mr writes tiny pages; a run
// whose wanted values are missing still fails.
TEST(ParquetEncodings, BitPackedRunsAreReadAsFarAsTheValuesWanted) {
  const std::vector<uint8_t> width_zero = {(2 << 1) | 1};  // 2 groups of 8, no bytes
  EXPECT_EQ(decode_rle_bit_packed({width_zero.data(), width_zero.size()}, 0, 10), std::vector<uint32_t>(10, 0));
  // 10 values 3 bits wide, least significant bit first, in a run declared
  // as 2 groups (16 values) but cut after its 30th bit.
  const std::vector<uint32_t> values = {0, 1, 2, 3, 4, 5, 6, 7, 5, 2};
  std::vector<uint8_t> bytes = {(2 << 1) | 1, 0, 0, 0, 0};
  for (size_t i = 0; i < values.size(); ++i) {
    for (int bit = 0; bit < 3; ++bit) bytes[1 + (i * 3 + bit) / 8] |= ((values[i] >> bit) & 1) << ((i * 3 + bit) % 8);
  }
  EXPECT_EQ(decode_rle_bit_packed({bytes.data(), bytes.size()}, 3, 10), values);
  EXPECT_CONTAINS(testing::error_message([&] { decode_rle_bit_packed({bytes.data(), 3}, 3, 10); }),
                  "a bit-packed run runs past the end");
}

TEST(ParquetFile, LayoutsAreWhatTheirNamesSay) {
  // A check of the test files themselves: the codecs, and the row groups
  // of the file written with small ones.
  EXPECT_EQ(codec_of(parquet_file("snappy_dictionary_v1")), parquet_code::kSnappy);
  EXPECT_EQ(codec_of(parquet_file("zstd_plain_v2")), parquet_code::kZstd);
  EXPECT_EQ(codec_of(parquet_file("gzip_pages_row_groups")), parquet_code::kGzip);
  EXPECT_EQ(codec_of(parquet_file("delta_byte_array")), parquet_code::kUncompressed);
  const auto metadata = file_metadata(parquet_file("gzip_pages_row_groups"));
  EXPECT_EQ(metadata.row_groups.size(), 2u);
  EXPECT_EQ(metadata.num_rows, kRows);
}

// As `data prepare` lists them: a document per row, read back from the
// column's copy, and named by row (a null or empty row has no bytes).
TEST(ParquetFile, CorpusListsARowPerDocument) {
  const std::string path = parquet_file("gzip_pages_row_groups");
  const TextCorpus corpus = list_text_documents({path});
  ASSERT_EQ(corpus.documents.size(), kRows);
  TextDocumentReader reader(corpus);
  const auto documents = written_documents();
  for (int64_t row : {int64_t{0}, int64_t{7}, kNullRow, kNullRow + 1, int64_t{200}, kRows - 1}) {
    EXPECT_EQ(reader.where(corpus.documents[row]), fmt::format("{}, row {}", path, row));
    EXPECT_EQ(reader.read(corpus.documents[row]), row == kNullRow ? "" : documents.at(row));
  }
  EXPECT_EQ(reader.read(corpus.documents[3]), documents.at(3));  // back to an earlier row
  // A file changed after it was listed is named, not read as something else.
  testing::ScratchDir dir;
  const std::string copy = dir.file("copy.parquet");
  std::filesystem::copy_file(path, copy);
  const TextCorpus listed = list_text_documents({copy});
  std::filesystem::copy_file(testing::test_data("../../fuzz/corpus/parquet/plain_pages.parquet"), copy,
                             std::filesystem::copy_options::overwrite_existing);
  TextDocumentReader stale(listed);
  EXPECT_CONTAINS(testing::error_message([&] { stale.read(listed.documents[1]); }),
                  copy + ", row 1: the file changed while it was read");
}

TEST(ParquetFile, RefusalsNameTheFileAndWhatItFound) {
  const std::string path = parquet_file("gzip_pages_row_groups");
  EXPECT_CONTAINS(testing::error_message([&] { read_column(path, "body"); }),
                  "'" + path + "' has no column 'body' (its columns: id, text, url)");
  EXPECT_CONTAINS(testing::error_message([&] { read_column(path, "id"); }),
                  "column 'id' holds INT64 values, expected strings (BYTE_ARRAY)");
  EXPECT_EQ(codec_of(parquet_file("lz4_hadoop")), parquet_code::kLz4Hadoop);
  EXPECT_CONTAINS(testing::error_message([&] { read_column(parquet_file("lz4_hadoop"), "text"); }),
                  "Parquet codec LZ4 is not read by this build of muonlab (it reads UNCOMPRESSED, ");
  EXPECT_CONTAINS(testing::error_message([&] { read_column(parquet_file("lz4_hadoop"), "text"); }),
                  "write the file again with compression='snappy' or 'zstd'");
  const std::string text = testing::test_data("parquet/documents.jsonl");
  EXPECT_CONTAINS(testing::error_message([&] { read_column(text, "text"); }),
                  "'" + text + "' is not a Parquet file");
}

// Damaged copies (bytes flipped anywhere, the file cut short) fail with an
// Error or, where the damage missed what is read, read; they never crash
// or read outside the file (the fuzz target checks the same under ASan).
TEST(ParquetFile, DamagedCopiesFailCleanly) {
  testing::ScratchDir dir;
  const std::string original = testing::read_bytes(parquet_file("gzip_pages_row_groups"));
  std::mt19937 random(7);
  int failures = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string damaged = original;
    if (trial % 3 == 0) {
      damaged.resize(random() % damaged.size());
    } else {
      for (int flip = 0; flip < 1 + trial % 4; ++flip) damaged[random() % damaged.size()] ^= 1 << (random() % 8);
    }
    const std::string path = dir.file("damaged.parquet");
    testing::write_bytes(path, damaged);
    try {
      read_parquet_string_column(path, "text", [](const std::string_view*) {});
    } catch (const Error&) {
      ++failures;
    }
  }
  EXPECT_GT(failures, 100);  // cut files alone fail 100 times
}

}  // namespace
}  // namespace muonlab::data
