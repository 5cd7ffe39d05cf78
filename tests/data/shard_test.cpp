// llm.c token shards: the project's writer against an independent one, the
// reader's round trip, and one test per kind of bad file.
#include <gtest/gtest.h>

#include <filesystem>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "data/data_test_util.h"
#include "muonlab/data/shard_header.h"
#include "muonlab/data/shard_writer.h"
#include "muonlab/data/token_loader.h"
#include "muonlab/data/token_shard.h"
#include "test_util.h"

namespace muonlab::data {
namespace {

// The format as docs/algorithms.md (Token shards) states it, written field by
// field with fwrite (this test runs on little-endian machines, as llm.c
// assumes); Token is uint16_t or uint32_t.
template <typename Token>
void write_reference_shard(const std::string& path, const std::vector<Token>& tokens, int32_t magic,
                           int32_t version, int32_t count = -1) {
  int32_t header[256] = {0};
  header[0] = magic;
  header[1] = version;
  header[2] = count >= 0 ? count : static_cast<int32_t>(tokens.size());
  FILE* file = std::fopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  std::fwrite(header, sizeof(int32_t), 256, file);
  std::fwrite(tokens.data(), sizeof(Token), tokens.size(), file);
  std::fclose(file);
}

void write_reference_shard(const std::string& path, const std::vector<uint16_t>& tokens, int32_t magic = 20240520,
                           int32_t version = 1, int32_t count = -1) {
  write_reference_shard<uint16_t>(path, tokens, magic, version, count);
}

TEST(Shard, WriterIsByteIdenticalToIndependentWriter) {
  testing::ScratchDir dir;
  std::vector<uint16_t> tokens = {50256, 0, 1, 255, 256, 65535, 31373, 995};
  write_reference_shard(dir.file("reference.bin"), tokens);
  write_shard(dir.file("ours.bin"), TokenIds(tokens.begin(), tokens.end()));
  std::string ours = testing::read_bytes(dir.file("ours.bin"));
  EXPECT_EQ(ours.size(), 1024 + 2 * tokens.size());
  EXPECT_EQ(ours, testing::read_bytes(dir.file("reference.bin")));
}

TEST(Shard, RoundTrips) {
  testing::ScratchDir dir;
  TokenIds tokens;
  for (int i = 0; i < 5000; ++i) tokens.push_back((i * 7919) % 65536);
  write_shard(dir.file("a.bin"), tokens);
  TokenShard shard(dir.file("a.bin"));
  ASSERT_EQ(shard.size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) ASSERT_EQ(shard[i], tokens[i]) << i;

  write_shard(dir.file("empty.bin"), {});
  EXPECT_EQ(TokenShard(dir.file("empty.bin")).size(), 0u);
}

// llm.c's LLaMA 3 shards: magic 20240801, version 7, uint32 tokens.
TEST(Shard, Uint32WriterIsByteIdenticalToIndependentWriterAndRoundTrips) {
  testing::ScratchDir dir;
  std::vector<uint32_t> tokens = {128000, 0, 1, 65535, 65536, 128255, 70000, 2147483647u};
  write_reference_shard<uint32_t>(dir.file("reference.bin"), tokens, 20240801, 7);
  write_shard(dir.file("ours.bin"), TokenIds(tokens.begin(), tokens.end()), kUint32Shards);
  EXPECT_EQ(testing::read_bytes(dir.file("ours.bin")), testing::read_bytes(dir.file("reference.bin")));
  TokenShard shard(dir.file("reference.bin"));
  EXPECT_EQ(shard.token_bytes(), 4);
  ASSERT_EQ(shard.size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(shard[i], tokens[i]) << i;
  EXPECT_CONTAINS(testing::error_message([&] { write_shard(dir.file("neg.bin"), {1, -3}, kUint32Shards); }),
                  "token -3 at position 1 does not fit uint32");
}

TEST(Shard, FormatFollowsTheVocabulary) {
  EXPECT_EQ(shard_format_for_vocab(257).magic, 20240520);
  EXPECT_EQ(shard_format_for_vocab(50257).magic, 20240520);
  EXPECT_EQ(shard_format_for_vocab(65536).token_bytes, 2);  // ids up to 65535 fit uint16
  EXPECT_EQ(shard_format_for_vocab(65537).token_bytes, 4);
  EXPECT_EQ(shard_format_for_vocab(128256).magic, 20240801);
}

TEST(Shard, LoaderReadsUint32ShardsAndChecksTheirVocabulary) {
  testing::ScratchDir dir;
  std::vector<uint32_t> tokens(40);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = 100000 + static_cast<uint32_t>(i);
  write_reference_shard<uint32_t>(dir.file("wide.bin"), tokens, 20240801, 7);
  LoaderOptions options = testing::loader_options(/*batch=*/2, /*seq_len=*/8);
  options.vocab_size = 128256;
  TokenLoader loader({dir.file("wide.bin")}, options);
  const Batch batch = loader.next();
  EXPECT_EQ(batch.inputs[0][0].item<int64_t>(), 100000);
  EXPECT_EQ(batch.targets[0][0].item<int64_t>(), 100001);
  options.vocab_size = 100010;
  EXPECT_CONTAINS(testing::error_message([&] { TokenLoader({dir.file("wide.bin")}, options); }),
                  "token 100010 at position 10 is outside the vocabulary (vocab size 100010)");
}

TEST(Shard, HeaderRoundTripsEveryField) {
  auto header = make_shard_header(123456);
  EXPECT_EQ(parse_shard_header(header.data(), header.size(), 1024 + 2 * 123456, "x").token_count, 123456u);
  header = make_shard_header(123456, kUint32Shards);
  const ShardHeader wide = parse_shard_header(header.data(), header.size(), 1024 + 4 * 123456, "x");
  EXPECT_EQ(wide.token_count, 123456u);
  EXPECT_EQ(wide.token_bytes, 4);
  EXPECT_CONTAINS(testing::error_message([] { make_shard_header(kMaxShardTokens + 1); }), "at most 2147483647 tokens");
}

TEST(Shard, WriterRejectsTokenOutsideUint16) {
  testing::ScratchDir dir;
  EXPECT_CONTAINS(testing::error_message([&] { write_shard(dir.file("big.bin"), {1, 70000}); }),
                  "token 70000 at position 1 does not fit uint16");
  EXPECT_FALSE(std::filesystem::exists(dir.file("big.bin")));  // nothing half-written
}

// Data prepare streams a shard in pieces: the file equals one written whole
// by the independent writer, in both widths.
TEST(Shard, FileWriterInPiecesEqualsTheIndependentWriter) {
  testing::ScratchDir dir;
  std::vector<uint32_t> tokens;
  for (uint32_t i = 0; i < 3000; ++i) tokens.push_back((i * 7919u) % 65536u);
  const TokenIds ids(tokens.begin(), tokens.end());
  for (const ShardFormat& format : {kUint16Shards, kUint32Shards}) {
    if (format.token_bytes == 2) {
      write_reference_shard(dir.file("reference.bin"), std::vector<uint16_t>(tokens.begin(), tokens.end()));
    } else {
      write_reference_shard<uint32_t>(dir.file("reference.bin"), tokens, 20240801, 7);
    }
    const std::string pieces = dir.file(fmt::format("pieces{}.bin", format.token_bytes));
    ShardFileWriter shard(pieces, format);
    for (size_t begin = 0, piece = 1; begin < ids.size(); begin += piece, piece = piece * 3 + 1) {
      shard.append(ids.data() + begin, std::min(piece, ids.size() - begin));
    }
    EXPECT_FALSE(std::filesystem::exists(pieces));  // not before finish()
    EXPECT_EQ(shard.tokens(), ids.size());
    shard.finish();
    EXPECT_EQ(testing::read_bytes(pieces), testing::read_bytes(dir.file("reference.bin")))
        << format.token_bytes;
  }
}

// A token that does not fit, after earlier pieces went to disk, is named by
// its position in the shard; the shard already there stays, and no
// temporary file is left.
TEST(Shard, FileWriterLeftUnfinishedLeavesNoFile) {
  testing::ScratchDir dir;
  write_shard(dir.file("old.bin"), {5, 6, 7});
  const std::string old_bytes = testing::read_bytes(dir.file("old.bin"));
  const TokenIds good(1000, 3);
  const TokenIds bad = {1, 2, 70000};
  EXPECT_CONTAINS(testing::error_message([&] {
                    ShardFileWriter shard(dir.file("old.bin"), kUint16Shards);
                    shard.append(good.data(), good.size());
                    shard.append(bad.data(), bad.size());
                  }),
                  "token 70000 at position 1002 does not fit uint16");
  {
    ShardFileWriter abandoned(dir.file("new.bin"), kUint16Shards);
    abandoned.append(good.data(), good.size());
  }
  EXPECT_EQ(testing::read_bytes(dir.file("old.bin")), old_bytes);
  EXPECT_FALSE(std::filesystem::exists(dir.file("new.bin")));
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);
}

std::string open_error(const std::string& path) {
  return testing::error_message([&] { TokenShard shard(path); });
}

TEST(ShardErrors, WrongMagic) {
  testing::ScratchDir dir;
  write_reference_shard(dir.file("magic.bin"), {1, 2}, /*magic=*/20240802);
  std::string error = open_error(dir.file("magic.bin"));
  EXPECT_CONTAINS(error, "magic.bin' has magic number 20240802; expected 20240520 (llm.c's uint16 tokens) or 20240801");
}

TEST(ShardErrors, TextGivenAsShardsGetsAHint) {
  testing::ScratchDir dir;
  const std::string hint = "it starts with text: make token shards from text with `muonlab data prepare";
  std::string jsonl;
  while (jsonl.size() < 2000) jsonl += "{\"text\": \"Call me Ishmael.\"}\n";
  testing::write_bytes(dir.file("docs.jsonl"), jsonl);
  EXPECT_CONTAINS(open_error(dir.file("docs.jsonl")), "docs.jsonl' has magic number 1702109819; expected");
  EXPECT_CONTAINS(open_error(dir.file("docs.jsonl")), hint);
  testing::write_bytes(dir.file("short.txt"), "Call me Ishmael.\tSome years ago\r\n");  // shorter than a header
  EXPECT_CONTAINS(open_error(dir.file("short.txt")), "short.txt' is truncated: 33 bytes, but the header alone takes 1024; " + hint);
  // Binary files get no hint: a shard of another magic, zeros.
  write_reference_shard(dir.file("magic.bin"), {1, 2}, /*magic=*/20240802);
  EXPECT_EQ(open_error(dir.file("magic.bin")).find(hint), std::string::npos);
  testing::write_bytes(dir.file("zeros.bin"), std::string(100, '\0'));
  EXPECT_EQ(open_error(dir.file("zeros.bin")).find(hint), std::string::npos);
  // Parquet, gzip and Zstandard files are named as what they are.
  const std::string parquet = testing::test_data("parquet/gzip_pages_row_groups.parquet");
  EXPECT_CONTAINS(open_error(parquet), "; it is a Parquet file: make token shards from it with `muonlab data prepare");
  const std::string zstd = testing::test_data("parquet/documents.jsonl.zst");
  EXPECT_CONTAINS(open_error(zstd), "; it is Zstandard: make token shards from it with `muonlab data prepare");
  testing::write_bytes(dir.file("docs.jsonl.gz"), std::string("\x1f\x8b\x08\x00", 4) + std::string(2000, 'x'));
  EXPECT_CONTAINS(open_error(dir.file("docs.jsonl.gz")), "; it is gzip: make token shards");
}

TEST(ShardErrors, WrongVersion) {
  testing::ScratchDir dir;
  write_reference_shard(dir.file("version.bin"), {1, 2}, 20240520, /*version=*/2);
  EXPECT_CONTAINS(open_error(dir.file("version.bin")), "version.bin' has format version 2; expected 1 with magic 20240520");
  // A uint32 magic with the uint16 version: each magic has its own version.
  write_reference_shard<uint32_t>(dir.file("mixed.bin"), {1, 2}, 20240801, 1);
  EXPECT_CONTAINS(open_error(dir.file("mixed.bin")), "format version 1; expected 7 with magic 20240801 (uint32 tokens)");
}

TEST(ShardErrors, TruncatedHeader) {
  testing::ScratchDir dir;
  testing::write_bytes(dir.file("short.bin"), std::string(100, '\0'));
  EXPECT_CONTAINS(open_error(dir.file("short.bin")), "short.bin' is truncated: 100 bytes, but the header alone takes 1024");
  testing::write_bytes(dir.file("zero.bin"), "");
  EXPECT_CONTAINS(open_error(dir.file("zero.bin")), "zero.bin' is truncated: 0 bytes");
}

TEST(ShardErrors, CountDisagreesWithFileSize) {
  testing::ScratchDir dir;
  write_reference_shard(dir.file("cut.bin"), {1, 2, 3}, 20240520, 1, /*count=*/10);
  EXPECT_CONTAINS(open_error(dir.file("cut.bin")),
                  "cut.bin' header says 10 uint16 tokens (1044 bytes with the header), but the file has 1030 bytes (truncated?)");
  write_reference_shard(dir.file("long.bin"), {1, 2, 3}, 20240520, 1, /*count=*/2);
  EXPECT_CONTAINS(open_error(dir.file("long.bin")), "header says 2 uint16 tokens (1028 bytes with the header), but the file has 1030 bytes");
  // Three uint32 tokens take 12 bytes, not the 6 a uint16 reading would want.
  write_reference_shard<uint16_t>(dir.file("half.bin"), {1, 2, 3}, 20240801, 7);
  EXPECT_CONTAINS(open_error(dir.file("half.bin")), "header says 3 uint32 tokens (1036 bytes with the header), but the file has 1030 bytes");
  write_reference_shard(dir.file("negative.bin"), {1}, 20240520, 1, /*count=*/0);
  std::string bytes = testing::read_bytes(dir.file("negative.bin"));
  bytes[11] = '\xFF';  // count = 0xFF000000: negative
  testing::write_bytes(dir.file("negative.bin"), bytes);
  EXPECT_CONTAINS(open_error(dir.file("negative.bin")), "negative token count");
}

TEST(ShardErrors, MissingFile) {
  EXPECT_CONTAINS(open_error("/nonexistent/x.bin"), "cannot open shard '/nonexistent/x.bin'");
}

TEST(ShardErrors, TokenOutsideVocabulary) {
  testing::ScratchDir dir;
  std::vector<uint16_t> tokens(40, 5);
  tokens[17] = 60000;
  write_reference_shard(dir.file("vocab.bin"), tokens);
  LoaderOptions options = testing::loader_options(/*batch=*/2, /*seq_len=*/8);
  options.vocab_size = 50257;
  // Found when the loader starts, not when a batch first reaches it (a bad
  // token in the validation shard used to surface at the first evaluation).
  EXPECT_CONTAINS(testing::error_message([&] { TokenLoader({dir.file("vocab.bin")}, options); }),
                  "vocab.bin': token 60000 at position 17 is outside the vocabulary (vocab size 50257)");
}

TEST(ShardErrors, EmptySplit) {
  testing::ScratchDir dir;
  EXPECT_CONTAINS(testing::error_message([&] { find_shards(dir.file("corpus_val_*.bin")); }),
                  "no shard files match '" + dir.file("corpus_val_*.bin") + "' (empty split)");
  EXPECT_CONTAINS(testing::error_message([&] { find_shards(dir.path()); }), "holds no .bin shards (empty split); make shards from text with `muonlab data prepare TEXT");
  EXPECT_CONTAINS(testing::error_message([] { TokenLoader({}, LoaderOptions{}); }), "no shards (empty split)");
  // A relative pattern is read from the current directory, which is named.
  EXPECT_CONTAINS(testing::error_message([] { find_shards("no_such_folder/corpus_val_*.bin"); }),
                  "no shard files match 'no_such_folder/corpus_val_*.bin' in " +
                      std::filesystem::current_path().string() +
                      " (relative paths are read from the current directory) (empty split)");
}

TEST(ShardErrors, SequenceLongerThanShard) {
  testing::ScratchDir dir;
  write_reference_shard(dir.file("small.bin"), std::vector<uint16_t>(500, 1));
  LoaderOptions options = testing::loader_options(/*batch=*/1, /*seq_len=*/1024);
  EXPECT_CONTAINS(testing::error_message([&] { TokenLoader({dir.file("small.bin")}, options); }),
                  "small.bin' has 500 tokens, fewer than one window of sequence length + 1 = 1025");
}

TEST(ShardErrors, DataSmallerThanOneGlobalBatch) {
  testing::ScratchDir dir;
  write_reference_shard(dir.file("few.bin"), std::vector<uint16_t>(33, 1));  // 4 windows of 8+1
  LoaderOptions options = testing::loader_options(/*batch=*/3, /*seq_len=*/8);
  options.world_size = 2;
  EXPECT_CONTAINS(testing::error_message([&] { TokenLoader({dir.file("few.bin")}, options); }),
                  "hold 4 windows of 9 tokens, fewer than one global batch of 6 (world size 2 x batch size 3)");
}

}  // namespace
}  // namespace muonlab::data

namespace muonlab::data {
namespace {

// A shard cut short while mapped (another process rewrote it, a disk was
// cleaned): the read past its new end exits 1 naming the shard, instead of a
// wordless SIGBUS. Death tests run in a child process.
TEST(ShardDeathTest, TruncatedWhileMappedIsNamed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  testing::ScratchDir dir;
  const std::string path = dir.file("cut.bin");
  write_shard(path, TokenIds(100000, 7));
  EXPECT_EXIT(
      {
        TokenShard shard(path);
        if (::truncate(path.c_str(), 1024 + 2 * 10) != 0) std::abort();
        volatile uint16_t token = shard[90000];
        (void)token;
        std::exit(0);
      },
      ::testing::ExitedWithCode(1),
      "shard '.*cut.bin' changed while it was being read: byte [0-9]+ of the 201024 it had when opened is gone");
}

}  // namespace
}  // namespace muonlab::data
