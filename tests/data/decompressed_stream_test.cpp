// Compressed inputs, decompressed as they are read: every gzip member and
// Zstandard frame, forward and back; and a compressed corpus lists and
// reads exactly as its plain file does, with lines, separators and whole
// documents falling across the stream's 1 MB reads.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <random>

#include "data/data_test_util.h"
#include "muonlab/data/decompressed_stream.h"
#include "muonlab/data/text_documents.h"
#include "test_util.h"

namespace muonlab::data {
namespace {

// `parts` as gzip members, one after another in one file.
void write_gzip_members(const std::string& path, const std::vector<std::string>& parts) {
  std::string file;
  for (const auto& part : parts) {
    uLongf size = compressBound(part.size()) + 64;
    std::string member(size, '\0');
    z_stream stream{};
    ASSERT_EQ(deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
    stream.avail_in = static_cast<uInt>(part.size());
    stream.next_out = reinterpret_cast<Bytef*>(member.data());
    stream.avail_out = static_cast<uInt>(member.size());
    ASSERT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
    member.resize(stream.total_out);
    deflateEnd(&stream);
    file += member;
  }
  testing::write_bytes(path, file);
}

std::string read_all(DecompressedStream& stream) {
  std::string text;
  char piece[4096];
  for (size_t got; (got = stream.read(piece, sizeof piece)) > 0;) text.append(piece, got);
  return text;
}

// About 3 MB of text: documents of one word to 300 KB, with blank ones.
std::vector<std::string> varied_documents() {
  std::mt19937 random(11);
  const std::vector<std::string> words = {"The ", "whale, ", "the ", "sea; ", "a ", "ship. ", "Ishmael\t", "says ",
                                          "\"Call me\" ", "1851 ", "caf\xc3\xa9 ", "\\n "};
  std::vector<std::string> documents;
  size_t total = 0;
  while (total < 3'000'000) {
    const size_t size = random() % 5 == 0 ? random() % 40'000 : 1 + random() % 400;  // in words
    std::string text;
    for (size_t i = 0; i < size; ++i) text += words[random() % words.size()];
    if (random() % 17 == 0) text = "   ";  // blank: left out of the listing
    total += text.size();
    documents.push_back(text);
  }
  return documents;
}

TEST(DecompressedStream, ReadsEveryGzipMemberAndZstandardFrame) {
  testing::ScratchDir dir;
  write_gzip_members(dir.file("two.txt.gz"), {"first member\n", "second member\n", ""});
  DecompressedStream gzip(dir.file("two.txt.gz"));
  EXPECT_EQ(read_all(gzip), "first member\nsecond member\n");
  EXPECT_EQ(gzip.position(), 27u);
  // Written by the zstd tool, in two frames.
  const std::string plain = testing::read_bytes(testing::test_data("parquet/documents.jsonl"));
  DecompressedStream zstd(testing::test_data("parquet/documents.jsonl.zst"));
  EXPECT_EQ(read_all(zstd), plain);
}

TEST(DecompressedStream, SeeksForwardAndBack) {
  testing::ScratchDir dir;
  std::string text;
  for (int i = 0; text.size() < 3'000'000; ++i) text += std::to_string(i) + ",";
  write_gzip_members(dir.file("numbers.gz"), {text.substr(0, 1'500'000), text.substr(1'500'000)});
  DecompressedStream stream(dir.file("numbers.gz"));
  char piece[32];
  for (uint64_t at : {2'500'000ull, 10ull, 1'499'990ull, 2'999'000ull, 0ull}) {
    stream.seek(at);
    ASSERT_EQ(stream.read(piece, sizeof piece), sizeof piece);
    EXPECT_EQ(std::string(piece, sizeof piece), text.substr(at, sizeof piece)) << "at " << at;
  }
  EXPECT_CONTAINS(testing::error_message([&] { stream.seek(text.size() + 1); }),
                  "numbers.gz' ends at decompressed byte " + std::to_string(text.size()));
}

TEST(DecompressedStream, CutAndForeignStreamsAreNamed) {
  testing::ScratchDir dir;
  write_gzip_members(dir.file("cut.gz"), {std::string(100'000, 'x') + "y"});
  const std::string whole = testing::read_bytes(dir.file("cut.gz"));
  testing::write_bytes(dir.file("cut.gz"), whole.substr(0, whole.size() - 10));
  DecompressedStream cut(dir.file("cut.gz"));
  EXPECT_CONTAINS(testing::error_message([&] { read_all(cut); }), "cut.gz' is not valid gzip: the stream is cut short");
  testing::write_bytes(dir.file("plain.gz"), "not gzip at all");
  DecompressedStream plain(dir.file("plain.gz"));
  EXPECT_CONTAINS(testing::error_message([&] { read_all(plain); }), "plain.gz' is not valid gzip");
}

// The same documents as a plain file and gzipped: the same listing (offsets
// into the decompressed bytes), the same texts, read forward or back.
void expect_listed_alike(const std::string& plain, const std::string& compressed, const TextInputOptions& options) {
  const TextCorpus expected = list_text_documents({plain}, options);
  const TextCorpus got = list_text_documents({compressed}, options);
  ASSERT_EQ(got.documents.size(), expected.documents.size());
  ASSERT_GT(got.documents.size(), 100u);
  TextDocumentReader plain_reader(expected), compressed_reader(got);
  for (size_t i = 0; i < got.documents.size(); ++i) {
    EXPECT_EQ(got.documents[i].offset, expected.documents[i].offset) << "document " << i;
    EXPECT_EQ(got.documents[i].bytes, expected.documents[i].bytes) << "document " << i;
  }
  for (size_t i : {size_t{0}, got.documents.size() / 2, got.documents.size() - 1, size_t{1}}) {
    EXPECT_EQ(compressed_reader.read(got.documents[i]), plain_reader.read(expected.documents[i])) << "document " << i;
  }
  for (size_t i = 0; i < got.documents.size(); ++i) {
    ASSERT_EQ(compressed_reader.read(got.documents[i]), plain_reader.read(expected.documents[i])) << "document " << i;
  }
}

TEST(CompressedCorpus, ListsAndReadsAsItsPlainFileAcrossPieces) {
  testing::ScratchDir dir;
  auto documents = varied_documents();
  // One document over two and a half of the stream's 1 MB reads.
  documents.insert(documents.begin() + 7, std::string(2'500'000, 'w') + " the end");
  std::string separated, lines;
  for (const auto& text : documents) {
    separated += text + "\n<|endoftext|>\n";
    lines += nlohmann::json{{"text", text}}.dump() + "\r\n";
  }
  lines += "{\"text\": \"a last line without its newline\"}";
  testing::write_bytes(dir.file("stories.txt"), separated);
  testing::write_bytes(dir.file("stories.jsonl"), lines);
  // Members split at odd places, so pieces and members end mid-document.
  write_gzip_members(dir.file("stories.txt.gz"), {separated.substr(0, 777'777), separated.substr(777'777)});
  write_gzip_members(dir.file("stories.jsonl.gz"), {lines.substr(0, 1'234'567), lines.substr(1'234'567)});
  TextInputOptions separated_options;
  separated_options.separator = "<|endoftext|>";
  expect_listed_alike(dir.file("stories.txt"), dir.file("stories.txt.gz"), separated_options);
  expect_listed_alike(dir.file("stories.jsonl"), dir.file("stories.jsonl.gz"), {});
  // A whole compressed text file is one document.
  const TextCorpus whole = list_text_documents({dir.file("stories.txt.gz")});
  ASSERT_EQ(whole.documents.size(), 1u);
  EXPECT_EQ(whole.documents[0].bytes, separated.size());
}

}  // namespace
}  // namespace muonlab::data
