// Streaming decode: text is written as soon as it ends a whole UTF-8
// character, never inside one, and in the end holds the bytes of decoding
// every id at once.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "muonlab/data/byte_tokenizer.h"
#include "muonlab/data/text_stream.h"
#include "muonlab/data/tokenizer.h"

namespace muonlab::data {
namespace {

// What the stream has written after each id of `bytes` (one id per byte,
// through the byte tokenizer), and after finish().
std::vector<std::string> written_after_each_byte(const std::string& bytes) {
  ByteTokenizer tokenizer;
  std::ostringstream out;
  TextStream stream(tokenizer, out);
  std::vector<std::string> written;
  for (const char byte : bytes) {
    stream.add(static_cast<unsigned char>(byte));
    written.push_back(out.str());
  }
  stream.finish();
  written.push_back(out.str());
  return written;
}

TEST(TextStream, HoldsACharacterBackUntilItsLastByte) {
  // "a", then é (2 bytes), € (3) and 😀 (4), then "b".
  const std::string text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80" "b";
  const std::vector<std::string> expected = {
      "a",   "a", "a\xC3\xA9", "a\xC3\xA9", "a\xC3\xA9", "a\xC3\xA9\xE2\x82\xAC",
      "a\xC3\xA9\xE2\x82\xAC", "a\xC3\xA9\xE2\x82\xAC", "a\xC3\xA9\xE2\x82\xAC",
      "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", text, text};
  EXPECT_EQ(written_after_each_byte(text), expected);
}

TEST(TextStream, BytesThatStartNoCharacterAreNotHeld) {
  // A stray continuation byte, bytes no UTF-8 character uses, and a lead
  // byte whose sequence another character interrupts.
  for (const std::string bytes : {"x\x80", "x\xFF", "x\xC0", "\xE2\x82" "c"}) {
    const auto written = written_after_each_byte(bytes);
    EXPECT_EQ(written[written.size() - 2], bytes) << "held back: " << ::testing::PrintToString(bytes);
  }
}

TEST(TextStream, FinishWritesACharacterCutShort) {
  const auto written = written_after_each_byte("ok\xE2\x82");
  EXPECT_EQ(written[2], "ok");
  EXPECT_EQ(written.back(), "ok\xE2\x82");
}

// Ids past the tokenizer's vocabulary (padded model rows) print as U+FFFD,
// as the whole-sample decode printed them.
TEST(TextStream, IdsPastTheVocabularyAreTheReplacementCharacter) {
  ByteTokenizer tokenizer;
  std::ostringstream out;
  TextStream stream(tokenizer, out);
  for (const int64_t id : {int64_t{'h'}, int64_t{tokenizer.vocab_size()}, int64_t{50303}, int64_t{'i'}}) stream.add(id);
  stream.finish();
  EXPECT_EQ(out.str(), "h\xEF\xBF\xBD\xEF\xBF\xBDi");
}

// Against decoding at once: GPT-2's BPE splits rare characters across
// tokens; streamed token by token the bytes come out the same.
TEST(TextStream, EndsWithTheBytesOfDecodingEveryIdAtOnce) {
  const auto tokenizer = load_tokenizer("gpt2");
  const std::string text = "Grüße, 東京 — naïve 🙂 ok";
  const TokenIds ids = tokenizer->encode_ordinary(text);
  std::ostringstream out;
  TextStream stream(*tokenizer, out);
  size_t held_back = 0;  // ids after which nothing new could be written
  for (const int32_t id : ids) {
    const size_t before = out.str().size();
    stream.add(id);
    if (out.str().size() == before) ++held_back;
    EXPECT_EQ(complete_utf8_prefix(out.str()), out.str().size()) << "written inside a character";
  }
  stream.finish();
  EXPECT_EQ(out.str(), tokenizer->decode(ids));
  EXPECT_EQ(out.str(), text);
  EXPECT_GT(held_back, 0u) << "no character was split across tokens: the test checks nothing";
}

TEST(CompleteUtf8Prefix, CountsWholeCharacters) {
  EXPECT_EQ(complete_utf8_prefix(""), 0u);
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(complete_utf8_prefix("ab\xE2"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xE2\x82"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xE2\x82\xAC"), 5u);
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98\x80"), 4u);
  EXPECT_EQ(complete_utf8_prefix("\x80\x80\x80\x80"), 4u);
}

}  // namespace
}  // namespace muonlab::data
