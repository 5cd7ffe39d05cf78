// `data prepare` on real text: shards hold exactly <|endoftext|> + the
// encoding of each document, the splits share no document, and bad inputs
// fail before anything is written.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <cstdlib>
#include <optional>
#include <set>

#include "data/data_test_util.h"
#include "muonlab/data/parquet_codecs.h"
#include "muonlab/data/parquet_metadata.h"
#include "muonlab/data/prepare_shards.h"
#include "muonlab/data/token_loader.h"
#include "muonlab/data/token_shard.h"
#include "test_util.h"

namespace muonlab::data {
namespace {

using testing::gpt2;

// Ten documents: the three committed excerpts cut into paragraphs' worth.
class PrepareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int index = 0;
    for (const char* name : {"moby-dick.txt", "sotu.txt", "brown.txt"}) {
      std::string text = testing::read_bytes(testing::test_data(std::string("text/") + name));
      for (size_t at = 0; at < text.size() && index < 10; at += 900, ++index) {
        std::string path = dir.file(fmt::format("in/doc_{:02d}.txt", index));
        testing::write_bytes(path, text.substr(at, 900));
        documents[path] = text.substr(at, 900);
      }
    }
    options.inputs = {dir.file("in")};
    options.out_dir = dir.file("out");
    options.name = "tiny";
    options.val_fraction = 0.2;
    options.shard_tokens = 700;
    options.threads = 2;
    // Temporary files, if any were made, would go to a folder of this test's
    // own, where counting them sees no other test's.
    const char* tmpdir = std::getenv("TMPDIR");
    previous_tmpdir = tmpdir ? std::optional<std::string>(tmpdir) : std::nullopt;
    std::filesystem::create_directories(dir.file("tmp"));
    ::setenv("TMPDIR", dir.file("tmp").c_str(), 1);
  }
  void TearDown() override {
    if (previous_tmpdir) {
      ::setenv("TMPDIR", previous_tmpdir->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

  // Every token of every shard of a split, in order.
  static TokenIds read_split(const SplitSummary& split) {
    TokenIds tokens;
    for (const auto& path : split.shards) {
      TokenShard shard(path);
      for (uint64_t i = 0; i < shard.size(); ++i) tokens.push_back(shard[i]);
    }
    return tokens;
  }

  // The documents a split's tokens hold, decoded between <|endoftext|>s.
  static std::vector<std::string> split_documents(const TokenIds& tokens) {
    std::vector<std::string> texts;
    TokenIds current;
    EXPECT_EQ(tokens.front(), gpt2().eot_token());
    for (size_t i = 1; i <= tokens.size(); ++i) {
      if (i == tokens.size() || tokens[i] == gpt2().eot_token()) {
        texts.push_back(gpt2().decode(current));
        current.clear();
      } else {
        current.push_back(tokens[i]);
      }
    }
    return texts;
  }

  testing::ScratchDir dir;
  std::map<std::string, std::string> documents;  // path -> text
  PrepareOptions options;
  std::optional<std::string> previous_tmpdir;
};

TEST_F(PrepareTest, ShardsHoldEachDocumentOnceAfterEndOfText) {
  ASSERT_EQ(documents.size(), 10u);
  PrepareSummary summary = prepare_shards(gpt2(), options);
  EXPECT_EQ(summary.val.documents, 2u);
  EXPECT_EQ(summary.train.documents, 8u);

  std::set<std::string> seen;
  for (const auto* split : {&summary.train, &summary.val}) {
    TokenIds tokens = read_split(*split);
    EXPECT_EQ(tokens.size(), split->tokens);
    for (size_t i = 0; i + 1 < split->shards.size(); ++i) EXPECT_EQ(TokenShard(split->shards[i]).size(), 700u);
    EXPECT_LE(TokenShard(split->shards.back()).size(), 700u);
    // Rebuild the expected stream independently: each document, in path
    // order, encoded alone and preceded by <|endoftext|>.
    std::vector<std::string> texts = split_documents(tokens);
    TokenIds expected;
    for (const auto& text : texts) {
      expected.push_back(gpt2().eot_token());
      TokenIds ids = gpt2().encode_ordinary(text);
      expected.insert(expected.end(), ids.begin(), ids.end());
    }
    EXPECT_EQ(tokens, expected);
    for (const auto& text : texts) EXPECT_TRUE(seen.insert(text).second) << "document in two places: " << text.substr(0, 40);
  }
  std::set<std::string> all;
  for (const auto& [path, text] : documents) all.insert(text);
  EXPECT_EQ(seen, all);  // every document, in exactly one split

  auto meta = nlohmann::json::parse(testing::read_bytes(summary.meta_path));
  EXPECT_EQ(meta["tokenizer"], "gpt2");
  EXPECT_EQ(meta["vocab_size"], 50257);
  EXPECT_EQ(meta["train"]["tokens"], summary.train.tokens);
  EXPECT_EQ(summary.train.shards.front(), dir.file("out/tiny_train_000000.bin"));
  EXPECT_EQ(summary.val.shards.front(), dir.file("out/tiny_val_000000.bin"));
}

// Progress comes in stage order: files listed (of ten), then bytes read for
// the duplicate check (all of the corpus), then bytes encoded, each ending
// at its total.
TEST_F(PrepareTest, ProgressReportsEachStageInOrder) {
  using Stage = PrepareProgress::Stage;
  std::vector<PrepareProgress> reports;
  const PrepareSummary summary =
      prepare_shards(gpt2(), options, [&](const PrepareProgress& progress) { reports.push_back(progress); });
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.front().stage, Stage::kListing);
  EXPECT_EQ(reports.front().total, 10u);
  EXPECT_EQ(reports.front().done, 1u);
  for (size_t i = 1; i < reports.size(); ++i) {
    EXPECT_LE(static_cast<int>(reports[i - 1].stage), static_cast<int>(reports[i].stage));
    if (reports[i].stage == reports[i - 1].stage) EXPECT_GE(reports[i].done, reports[i - 1].done);
  }
  const auto last_of = [&](Stage stage) {
    PrepareProgress last;
    for (const auto& report : reports) last = report.stage == stage ? report : last;
    return last;
  };
  EXPECT_EQ(last_of(Stage::kListing).done, 10u);
  const PrepareProgress checked = last_of(Stage::kCheckingDuplicates);
  EXPECT_EQ(checked.done, checked.total);
  uint64_t corpus_bytes = 0;
  for (const auto& [path, text] : documents) corpus_bytes += text.size();
  EXPECT_EQ(checked.total, corpus_bytes);
  const PrepareProgress encoded = reports.back();
  EXPECT_EQ(encoded.stage, Stage::kEncoding);
  EXPECT_EQ(encoded.done, encoded.total);
  EXPECT_EQ(encoded.done, summary.train.bytes + summary.val.bytes);
  EXPECT_EQ(encoded.tokens, summary.train.tokens + summary.val.tokens);
}

TEST_F(PrepareTest, SameSeedSameShardsOtherSeedOtherSplit) {
  PrepareSummary first = prepare_shards(gpt2(), options);
  TokenIds first_val = read_split(first.val);
  options.replace_existing = true;
  PrepareSummary again = prepare_shards(gpt2(), options);
  EXPECT_EQ(read_split(again.val), first_val);
  bool any_differs = false;
  for (uint64_t seed = 1; seed < 6 && !any_differs; ++seed) {
    options.seed = seed;
    any_differs = read_split(prepare_shards(gpt2(), options).val) != first_val;
  }
  EXPECT_TRUE(any_differs);
}

TEST_F(PrepareTest, DropsExactDuplicatesAndEmptyDocuments) {
  testing::write_bytes(dir.file("in/zz_copy.txt"), documents.begin()->second);
  testing::write_bytes(dir.file("in/zz_empty.txt"), "");
  PrepareSummary summary = prepare_shards(gpt2(), options);
  EXPECT_EQ(summary.duplicates_dropped, 1u);
  EXPECT_EQ(summary.empty_dropped, 1u);
  EXPECT_EQ(summary.train.documents + summary.val.documents, 10u);
}

TEST_F(PrepareTest, RefusesToMixWithExistingShards) {
  prepare_shards(gpt2(), options);
  EXPECT_CONTAINS(testing::error_message([&] { prepare_shards(gpt2(), options); }),
                  "already holds 4 shard(s) named tiny_*, such as 'tiny_train_000000.bin'");
  options.replace_existing = true;
  options.shard_tokens = 1'000'000;  // fewer shards than before: old ones must go
  PrepareSummary summary = prepare_shards(gpt2(), options);
  EXPECT_EQ(find_shards(dir.file("out/tiny_train_*.bin")), summary.train.shards);
}

TEST_F(PrepareTest, EmptySplitIsAnError) {
  options.inputs = {dir.file("in/doc_00.txt")};
  EXPECT_CONTAINS(testing::error_message([&] { prepare_shards(gpt2(), options); }),
                  "empty split: 1 distinct document(s) cannot give 1 for validation");
  EXPECT_FALSE(std::filesystem::exists(dir.file("out")));
  options.val_fraction = 0;
  EXPECT_EQ(prepare_shards(gpt2(), options).val.shards.size(), 0u);
}

TEST_F(PrepareTest, BadInputsNamed) {
  options.inputs = {dir.file("nope")};
  EXPECT_CONTAINS(testing::error_message([&] { prepare_shards(gpt2(), options); }),
                  "input '" + dir.file("nope") + "' is neither a text file nor a folder");
  options.inputs = {dir.file("in")};
  options.val_fraction = 1.5;
  EXPECT_CONTAINS(testing::error_message([&] { prepare_shards(gpt2(), options); }),
                  "validation fraction 1.5 is outside [0, 1)");
}

// Every shard of a prepare, as bytes, train then validation.
std::vector<std::string> shard_bytes(const PrepareSummary& summary) {
  std::vector<std::string> bytes;
  for (const auto* split : {&summary.train, &summary.val}) {
    for (const auto& path : split->shards) bytes.push_back(testing::read_bytes(path));
  }
  return bytes;
}

std::string trimmed_copy(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t\n\r\f\v");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\n\r\f\v") - first + 1);
}

TEST_F(PrepareTest, JsonLinesGiveTheShardsOfOneFilePerDocument) {
  const std::vector<std::string> reference = shard_bytes(prepare_shards(gpt2(), options));
  // The same documents, in the same order, one JSON object a line: other
  // fields beside "text", escaped and raw UTF-8 (ensure_ascii on every
  // other line), a blank line and a CRLF ending, split over two files.
  std::string first, second;
  int index = 0;
  for (const auto& [path, text] : documents) {
    const nlohmann::json line = {{"id", index}, {"text", text}, {"meta", {{"source", path}}}};
    (index < 6 ? first : second) += line.dump(-1, ' ', /*ensure_ascii=*/index % 2 == 0) + (index == 3 ? "\r\n" : "\n");
    if (index == 2) first += "\n";
    ++index;
  }
  testing::write_bytes(dir.file("jsonl/a.jsonl"), first);
  testing::write_bytes(dir.file("jsonl/b.jsonl"), second.substr(0, second.size() - 1));  // no final newline
  testing::write_bytes(dir.file("jsonl/notes.json"), "not read: a folder gives only its .txt and .jsonl files");
  options.inputs = {dir.file("jsonl")};
  options.out_dir = dir.file("out-jsonl");
  EXPECT_EQ(shard_bytes(prepare_shards(gpt2(), options)), reference);
  // Another field name.
  testing::write_bytes(dir.file("content.json"), nlohmann::json{{"content", "one"}}.dump() + "\n" +
                                                     nlohmann::json{{"content", "two"}}.dump() + "\n");
  options.inputs = {dir.file("content.json")};
  options.text.field = "content";
  options.val_fraction = 0.5;
  options.replace_existing = true;
  const PrepareSummary content = prepare_shards(gpt2(), options);
  EXPECT_EQ(content.train.documents + content.val.documents, 2u);
  EXPECT_EQ(content.train.bytes + content.val.bytes, 6u);
}

TEST_F(PrepareTest, SeparatedTextGivesTheShardsOfItsTrimmedPieces) {
  // The reference: each document trimmed, in its own file.
  std::string joined = "\n";
  for (const auto& [path, text] : documents) {
    testing::write_bytes(dir.file("trimmed/" + std::filesystem::path(path).filename().string()), trimmed_copy(text));
    joined += text + "\n<|endoftext|>\n";
  }
  joined += "<|endoftext|>  \n";  // an empty piece: left out
  options.inputs = {dir.file("trimmed")};
  const std::vector<std::string> reference = shard_bytes(prepare_shards(gpt2(), options));
  testing::write_bytes(dir.file("stories.txt"), joined);
  options.inputs = {dir.file("stories.txt")};
  options.out_dir = dir.file("out-separated");
  options.text.separator = std::string(kEndOfText);
  const PrepareSummary separated = prepare_shards(gpt2(), options);
  EXPECT_EQ(shard_bytes(separated), reference);
  EXPECT_EQ(separated.literal_end_of_text, 0u);
  // Without the separator the file is one document holding the marker as
  // text, and the summary counts it.
  options.text.separator.clear();
  options.val_fraction = 0;
  options.replace_existing = true;
  EXPECT_EQ(prepare_shards(gpt2(), options).literal_end_of_text, 1u);
}

void write_gzip(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  gzFile out = gzopen(path.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(out), Z_OK);
}

// Temporary files muonlab made and has not removed (it makes none: compressed
// inputs are decompressed as they are read).
size_t temporary_files_left() {
  size_t left = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::temp_directory_path())) {
    left += entry.path().filename().string().rfind("muonlab-prepare-", 0) == 0;
  }
  return left;
}

TEST_F(PrepareTest, GzipInputsGiveTheShardsOfTheirContent) {
  const std::vector<std::string> reference = shard_bytes(prepare_shards(gpt2(), options));
  // The same documents: the first five as one .txt.gz each, the rest as
  // lines of a .jsonl.gz, in a folder that also holds a .gz of another kind.
  std::string lines;
  int index = 0;
  for (const auto& [path, text] : documents) {
    const std::string name = std::filesystem::path(path).filename().string();
    if (index++ < 5) {
      write_gzip(dir.file("gz/" + name + ".gz"), text);
    } else {
      lines += nlohmann::json{{"text", text}}.dump() + "\n";
    }
  }
  write_gzip(dir.file("gz/zz_rest.jsonl.gz"), lines);
  write_gzip(dir.file("gz/notes.csv.gz"), "not read");
  const size_t copies_before = temporary_files_left();
  options.inputs = {dir.file("gz")};
  options.out_dir = dir.file("out-gz");
  EXPECT_EQ(shard_bytes(prepare_shards(gpt2(), options)), reference);
  EXPECT_EQ(temporary_files_left(), copies_before);
  // A gzip stream cut short is named, and nothing is left behind.
  write_gzip(dir.file("bad/cut.jsonl.gz"), lines);
  const std::string whole = testing::read_bytes(dir.file("bad/cut.jsonl.gz"));
  testing::write_bytes(dir.file("bad/cut.jsonl.gz"), whole.substr(0, whole.size() / 2));
  options.inputs = {dir.file("bad")};
  EXPECT_CONTAINS(testing::error_message([&] { prepare_shards(gpt2(), options); }),
                  "'" + dir.file("bad/cut.jsonl.gz") + "' is not valid gzip");
  EXPECT_EQ(temporary_files_left(), copies_before);
}

// The documents of tests/data/parquet as JSON Lines, as Parquet files of
// every layout there (the Arrow Rust writer's), and as Zstandard JSON Lines
// of two frames (the zstd tool's): the same shards. The Parquet files also
// hold a null, which counts as one more empty document.
TEST_F(PrepareTest, ParquetAndZstdInputsGiveTheShardsOfTheirJsonLines) {
  options.inputs = {testing::test_data("parquet/documents.jsonl")};
  options.out_dir = dir.file("out-jsonl");
  const PrepareSummary json_lines = prepare_shards(gpt2(), options);
  const std::vector<std::string> reference = shard_bytes(json_lines);
  const size_t copies_before = temporary_files_left();
  for (const char* layout : {"snappy_dictionary_v1", "snappy_dictionary_v2", "zstd_plain_v2", "gzip_pages_row_groups",
                             "delta_length_byte_array", "delta_byte_array", "brotli", "lz4_raw"}) {
    SCOPED_TRACE(layout);
    options.inputs = {testing::test_data(std::string("parquet/") + layout + ".parquet")};
    options.out_dir = dir.file(std::string("out-") + layout);
    if (std::string(layout).find("snappy") == 0 && !parquet_codec_supported(parquet_code::kSnappy)) continue;
    if (std::string(layout).find("zstd") == 0 && !parquet_codec_supported(parquet_code::kZstd)) continue;
    if (std::string(layout) == "brotli" && !parquet_codec_supported(parquet_code::kBrotli)) continue;
    if (std::string(layout) == "lz4_raw" && !parquet_codec_supported(parquet_code::kLz4Raw)) continue;
    const PrepareSummary parquet = prepare_shards(gpt2(), options);
    EXPECT_EQ(shard_bytes(parquet), reference);
    EXPECT_EQ(parquet.empty_dropped, json_lines.empty_dropped + 1);
    EXPECT_EQ(parquet.duplicates_dropped, json_lines.duplicates_dropped);
  }
  EXPECT_EQ(temporary_files_left(), copies_before);
  if (!parquet_codec_supported(parquet_code::kZstd)) GTEST_SKIP() << "this build does not read Zstandard";
  options.inputs = {testing::test_data("parquet/documents.jsonl.zst")};
  options.out_dir = dir.file("out-zst");
  EXPECT_EQ(shard_bytes(prepare_shards(gpt2(), options)), reference);
  // A Zstandard stream cut short is named, and nothing is left behind.
  const std::string whole = testing::read_bytes(testing::test_data("parquet/documents.jsonl.zst"));
  testing::write_bytes(dir.file("bad/cut.jsonl.zst"), whole.substr(0, whole.size() - 100));
  options.inputs = {dir.file("bad")};
  EXPECT_CONTAINS(testing::error_message([&] { prepare_shards(gpt2(), options); }),
                  "'" + dir.file("bad/cut.jsonl.zst") + "' is not valid Zstandard: the stream is cut short");
  EXPECT_EQ(temporary_files_left(), copies_before);
}

TEST_F(PrepareTest, BadJsonLinesNamedByLineBeforeAnythingIsWritten) {
  auto error_for = [&](const std::string& lines) {
    testing::write_bytes(dir.file("bad.jsonl"), lines);
    options.inputs = {dir.file("bad.jsonl")};
    return testing::error_message([&] { prepare_shards(gpt2(), options); });
  };
  const std::string where = dir.file("bad.jsonl");
  EXPECT_CONTAINS(error_for("{\"text\": \"a\"}\n\n{\"text\": \"b\"\n"), where + ":3: not a JSON line");
  EXPECT_CONTAINS(error_for("{\"body\": \"a\", \"id\": 1}\n"),
                  where + ":1: no field \"text\" (the object has: body, id); name the documents' field with --field");
  EXPECT_CONTAINS(error_for("{\"text\": \"a\"}\n{\"text\": 5}\n"), where + ":2: field \"text\" is number, expected a string");
  EXPECT_CONTAINS(error_for("[\"text\"]\n"), where + ":1: expected a JSON object, got array");
  EXPECT_CONTAINS(error_for("\n  \n"), "no documents found: the 1 input file(s) hold only blank lines or separators");
  EXPECT_FALSE(std::filesystem::exists(dir.file("out")));
}

}  // namespace
}  // namespace muonlab::data
