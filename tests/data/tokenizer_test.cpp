// The GPT-2 tokenizer against OpenAI's ids, and the properties any byte-level
// tokenizer must have: every byte string round-trips, ids stay in range.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <random>
#include <set>

#include "data/data_test_util.h"
#include "muonlab/data/byte_tokenizer.h"
#include "muonlab/data/gpt2_byte_map.h"
#include "muonlab/data/gpt2_pretokenizer.h"
#include "muonlab/data/gpt2_tokenizer.h"
#include "test_util.h"

namespace muonlab::data {
namespace {

using testing::gpt2;

TokenIds ids_of(const nlohmann::json& array) { return array.get<TokenIds>(); }

TEST(Gpt2Tokenizer, ReproducesGoldenIds) {
  auto vectors = nlohmann::json::parse(testing::read_bytes(testing::test_data("gpt2_test_vectors.json")));
  ASSERT_GE(vectors.size(), 7u);
  for (const auto& vector : vectors) {
    std::string text = vector["text"];
    EXPECT_EQ(gpt2().encode(text), ids_of(vector["ids"])) << "text: " << text;
    EXPECT_EQ(gpt2().decode(ids_of(vector["ids"])), text);
  }
}

// Unicode edge cases (every White_Space character and some that are not,
// contractions, digits of other scripts, combining marks, emoji sequences),
// with ids from OpenAI's encoder.py algorithm under Python's `regex`
// (tests/data/README.md says how they were made).
TEST(Gpt2Tokenizer, ReproducesEncoderPyOnUnicodeEdgeCases) {
  auto vectors = nlohmann::json::parse(testing::read_bytes(testing::test_data("gpt2_edge_vectors.json")));
  ASSERT_GE(vectors.size(), 80u);
  for (const auto& vector : vectors) {
    std::string text = vector["text"];
    EXPECT_EQ(gpt2().encode_ordinary(text), ids_of(vector["ids"])) << "text: " << text;
  }
}

TEST(Gpt2Tokenizer, VocabularyHasOpenAisShape) {
  EXPECT_EQ(gpt2().vocab_size(), 50257);
  EXPECT_EQ(gpt2().eot_token(), 50256);
  EXPECT_EQ(gpt2().decode({50256}), "<|endoftext|>");
  // Merge r of vocab.bpe makes id 256 + r: the first merge is "Ġ t" -> " t".
  EXPECT_EQ(gpt2().decode({256}), " t");
  EXPECT_EQ(gpt2().encode(" t"), TokenIds{256});
}

TEST(Gpt2Tokenizer, SpecialTokenOnlyWhenAllowed) {
  EXPECT_EQ(gpt2().encode("a<|endoftext|>b"), (TokenIds{64, 50256, 65}));
  TokenIds ordinary = gpt2().encode_ordinary("a<|endoftext|>b");
  EXPECT_EQ(std::count(ordinary.begin(), ordinary.end(), 50256), 0);
  EXPECT_EQ(gpt2().decode(ordinary), "a<|endoftext|>b");
  EXPECT_EQ(gpt2().encode("<|endoftext|><|endoftext|>"), (TokenIds{50256, 50256}));
}

std::string random_utf8(std::mt19937& random, int characters) {
  // Code points from every UTF-8 length, skipping surrogates.
  std::uniform_int_distribution<int> pick_range(0, 4);
  const std::pair<char32_t, char32_t> ranges[] = {
      {0x20, 0x7E}, {0x09, 0x0D}, {0x80, 0x7FF}, {0x800, 0xD7FF}, {0x10000, 0x10FFFF}};
  std::string text;
  for (int i = 0; i < characters; ++i) {
    auto [low, high] = ranges[pick_range(random)];
    char32_t c = std::uniform_int_distribution<char32_t>(low, high)(random);
    if (c < 0x80) {
      text += static_cast<char>(c);
    } else if (c < 0x800) {
      text += static_cast<char>(0xC0 | (c >> 6));
      text += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      text += static_cast<char>(0xE0 | (c >> 12));
      text += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      text += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      text += static_cast<char>(0xF0 | (c >> 18));
      text += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      text += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      text += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return text;
}

void expect_round_trip(const Tokenizer& tokenizer, const std::string& bytes) {
  TokenIds ids = tokenizer.encode_ordinary(bytes);
  for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tokenizer.vocab_size()) << id;
  EXPECT_EQ(tokenizer.decode(ids), bytes);
  EXPECT_LE(ids.size(), bytes.size());
}

TEST(Gpt2Tokenizer, RoundTripsArbitraryUtf8) {
  std::mt19937 random(7);
  for (int trial = 0; trial < 200; ++trial) expect_round_trip(gpt2(), random_utf8(random, 1 + trial % 40));
}

TEST(Gpt2Tokenizer, RoundTripsInvalidUtf8AndEveryByte) {
  std::mt19937 random(11);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int trial = 0; trial < 200; ++trial) {
    std::string bytes;
    for (int i = 0; i < 1 + trial % 50; ++i) bytes += static_cast<char>(byte(random));
    expect_round_trip(gpt2(), bytes);
  }
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes += static_cast<char>(b);
  expect_round_trip(gpt2(), all_bytes);
  // Truncated, overlong and surrogate encodings inside ordinary text.
  expect_round_trip(gpt2(), "caf\xC3 ok \xE2\x82 \xC0\xAF \xED\xA0\x80 end \xF4\x90\x80\x80!");
}

TEST(Gpt2Tokenizer, DecodeRejectsIdsOutsideVocabulary) {
  EXPECT_CONTAINS(testing::error_message([] { gpt2().decode({50257}); }), "token id 50257 is outside the GPT-2 vocabulary (0-50256)");
  EXPECT_CONTAINS(testing::error_message([] { gpt2().decode({-1}); }), "token id -1");
}

TEST(Gpt2Tokenizer, ParallelEncodingEqualsSerial) {
  std::vector<std::string> documents;
  for (const char* name : {"moby-dick.txt", "sotu.txt", "brown.txt"}) {
    std::string text = testing::read_bytes(testing::test_data(std::string("text/") + name));
    ASSERT_GT(text.size(), 1000u) << name;
    for (size_t at = 0; at < text.size(); at += 300) documents.push_back(text.substr(at, 300));
  }
  auto fresh = load_tokenizer("gpt2");  // cold per-thread caches
  std::vector<TokenIds> parallel = fresh->encode_documents(documents, 4);
  ASSERT_EQ(parallel.size(), documents.size());
  for (size_t i = 0; i < documents.size(); ++i) EXPECT_EQ(parallel[i], gpt2().encode_ordinary(documents[i])) << i;
}

// The heap strategy for long pieces against the scan loop of OpenAI's
// encoder.py, on pieces that take many merges: runs of letters (a word as
// long as base64 or DNA text), digits, spaces, and real words.
TEST(BpeMerges, HeapMergeEqualsScanMerge) {
  const auto& merges = dynamic_cast<const Gpt2Tokenizer&>(gpt2()).merges();
  std::mt19937 random(5);
  std::vector<std::string> pieces = {" antidisestablishmentarianism", std::string(300, ' '), std::string(97, 'a'),
                                     " 12345678901234567890123456789", "ababababababababababababababababab"};
  for (const char* alphabet : {"abcdefghijklmnopqrstuvwxyz", "etaoinshr", "ACGT", "0123456789", " \n"}) {
    std::string letters(alphabet);
    for (int trial = 0; trial < 40; ++trial) {
      std::string piece;
      int length = 1 + static_cast<int>(random() % 400);
      for (int i = 0; i < length; ++i) piece += letters[random() % letters.size()];
      pieces.push_back(piece);
    }
  }
  for (const auto& piece : pieces) {
    EXPECT_EQ(merges.merge_by_heap(piece), merges.merge_by_scan(piece)) << "piece: " << piece;
  }
}

TEST(BpeMerges, LongWordRoundTrips) {
  // 64 KB of random letters in one pre-token: quadratic with the scan alone.
  std::mt19937 random(9);
  std::string word;
  for (int i = 0; i < (1 << 16); ++i) word += static_cast<char>('a' + random() % 26);
  expect_round_trip(gpt2(), word);
}

TEST(Gpt2Pretokenizer, SplitsAsOpenAisPattern) {
  // Pieces worked out by hand from the pattern: contractions, optional
  // leading space, digits apart from letters, whitespace before a word kept
  // off it but one space, trailing whitespace whole.
  Gpt2Pretokenizer pretokenizer;
  std::vector<std::string> pieces;
  pretokenizer.split("I'm  in 2024, ok?\n\n  x  ", [&](std::string_view piece) { pieces.emplace_back(piece); });
  EXPECT_EQ(pieces, (std::vector<std::string>{"I", "'m", " ", " in", " 2024", ",", " ok", "?", "\n\n ", " x", "  "}));
}

TEST(Gpt2Pretokenizer, MongolianVowelSeparatorIsNotWhitespace) {
  // U+180E left Unicode's White_Space in 6.3; PCRE2's \s still has it.
  Gpt2Pretokenizer pretokenizer;
  std::vector<std::string> pieces;
  pretokenizer.split("a  \xE1\xA0\x8E" "b", [&](std::string_view piece) { pieces.emplace_back(piece); });
  EXPECT_EQ(pieces, (std::vector<std::string>{"a", " ", " \xE1\xA0\x8E", "b"}));
}

TEST(Gpt2ByteMap, IsABijectionThatKeepsPrintableBytes) {
  const auto& spellings = gpt2_byte_spellings();
  std::set<std::string> distinct(spellings.begin(), spellings.end());
  EXPECT_EQ(distinct.size(), 256u);
  EXPECT_EQ(spellings['A'], "A");
  EXPECT_EQ(spellings[' '], "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(spellings['\n'], "\xC4\x8A");  // U+010A 'Ċ'
}

TEST(ByteTokenizer, OneIdPerByteAndEndOfText) {
  ByteTokenizer bytes;
  EXPECT_EQ(bytes.vocab_size(), 257);
  EXPECT_EQ(bytes.encode("h\xC3\xA9<|endoftext|>"), (TokenIds{104, 195, 169, 256}));
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes += static_cast<char>(b);
  expect_round_trip(bytes, all_bytes);
  EXPECT_CONTAINS(testing::error_message([&] { bytes.decode({257}); }), "token id 257 is outside the byte tokenizer");
}

// Malformed tokenizer files: each error names the file and what is wrong.
class Gpt2FilesTest : public ::testing::Test {
 protected:
  void write(const std::string& encoder_json, const std::string& merges) {
    testing::write_bytes(dir.file("encoder.json"), encoder_json);
    testing::write_bytes(dir.file("vocab.bpe"), merges);
  }
  std::string load_error() {
    return testing::error_message([&] { Gpt2Tokenizer::load(dir.path()); });
  }
  // A valid tiny vocabulary: the 256 byte spellings, "ab", and <|endoftext|>.
  std::string tiny_encoder(const std::string& extra = "") {
    nlohmann::json encoder;
    const auto& spellings = gpt2_byte_spellings();
    for (int byte = 0; byte < 256; ++byte) encoder[spellings[byte]] = byte;
    encoder["ab"] = 256;
    encoder["<|endoftext|>"] = 257;
    std::string text = encoder.dump();
    return extra.empty() ? text : text.substr(0, text.size() - 1) + "," + extra + "}";
  }
  testing::ScratchDir dir;
};

TEST_F(Gpt2FilesTest, TinyVocabularyLoadsAndMerges) {
  write(tiny_encoder(), "#version: 0.2\na b\n");
  auto tokenizer = Gpt2Tokenizer::load(dir.path());
  EXPECT_EQ(tokenizer->vocab_size(), 258);
  EXPECT_EQ(tokenizer->encode("abc<|endoftext|>"), (TokenIds{256, 'c', 257}));
}

TEST_F(Gpt2FilesTest, MissingFolderFilesNamed) {
  EXPECT_CONTAINS(testing::error_message([&] { load_tokenizer(dir.path()); }), "holds neither encoder.json and vocab.bpe nor a tokenizer.json");
  EXPECT_CONTAINS(testing::error_message([] { load_tokenizer("no-such-tokenizer"); }),
                  "unknown tokenizer 'no-such-tokenizer': expected gpt2, byte");
  EXPECT_CONTAINS(testing::error_message([] { load_tokenizer("gtp2"); }),
                  "unknown tokenizer 'gtp2' (did you mean 'gpt2'?)");
}

TEST_F(Gpt2FilesTest, InvalidJsonNamesFile) {
  write("{\"a\": 0,", "a b\n");
  EXPECT_CONTAINS(load_error(), "encoder.json' is not valid JSON");
}

TEST_F(Gpt2FilesTest, BadIdNamesToken) {
  write(tiny_encoder("\"zz\": \"x\""), "a b\n");
  EXPECT_CONTAINS(load_error(), "token 'zz' has id \"x\"");
}

TEST_F(Gpt2FilesTest, MalformedMergeLineNamesLine) {
  write(tiny_encoder(), "#version: 0.2\na b\nab\n");
  EXPECT_CONTAINS(load_error(), "vocab.bpe' line 3: expected two tokens separated by one space, got 'ab'");
}

TEST_F(Gpt2FilesTest, MergeOfUnknownTokenNamesIt) {
  write(tiny_encoder(), "a c\n");
  EXPECT_CONTAINS(load_error(), "line 1: token 'ac' is not in the vocabulary");
}

TEST_F(Gpt2FilesTest, RepeatedMergeNamesBothLines) {
  write(tiny_encoder(), "a b\na b\n");
  EXPECT_CONTAINS(load_error(), "line 2: merge 'a b' repeats line 1");
}

}  // namespace
}  // namespace muonlab::data
