// A Hugging Face tokenizer.json read by muonlab encodes as Hugging Face's
// own `tokenizers` does: the golden ids of tests/data/hf_tokenizer (LLaMA 3's
// layout: its split pattern, ignore_merges, special tokens after the
// vocabulary; tests/data/hf_tokenizer/make_vectors.py), and GPT-2's files
// rewritten as a tokenizer.json give OpenAI's ids. What it cannot reproduce
// is refused by name.
#include "muonlab/data/hf_tokenizer_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "data/data_test_util.h"
#include "muonlab/core/read_file.h"
#include "muonlab/data/tokenizer.h"
#include "muonlab/data/unicode_nfc.h"
#include "test_util.h"

namespace muonlab::data {
namespace {

using Json = nlohmann::json;

Json llama_layout() { return Json::parse(testing::read_bytes(testing::test_data("hf_tokenizer/tokenizer.json"))); }

// `layout` written to a scratch file and loaded.
std::unique_ptr<Gpt2Tokenizer> load_layout(const testing::ScratchDir& dir, const Json& layout) {
  const std::string path = dir.file("tokenizer.json");
  testing::write_bytes(path, layout.dump());
  return load_tokenizer_json(path);
}

TEST(HfTokenizerJson, EncodesAsHuggingFaceTokenizers) {
  const auto tokenizer = load_tokenizer(testing::test_data("hf_tokenizer/tokenizer.json"));
  EXPECT_EQ(tokenizer->vocab_size(), 1005);
  EXPECT_EQ(tokenizer->decode({tokenizer->eot_token()}), "<|begin_of_text|>");  // no <|endoftext|>: BOS separates
  const auto vectors = Json::parse(testing::read_bytes(testing::test_data("hf_tokenizer/vectors.json")));
  ASSERT_GE(vectors.size(), 10u);
  for (const auto& vector : vectors) {
    const std::string text = vector["text"];
    const TokenIds ids = vector["ids"].get<TokenIds>();
    EXPECT_EQ(tokenizer->encode(text), ids) << "text: " << text;
    EXPECT_EQ(tokenizer->decode(ids), text);
  }
  // encode_ordinary takes a special token's text as text, but still finds
  // the plain added token (three spaces, id 1004), as transformers does.
  const TokenIds ordinary = tokenizer->encode_ordinary("a<|end_of_text|>b");
  EXPECT_EQ(tokenizer->decode(ordinary), "a<|end_of_text|>b");
  EXPECT_EQ(std::count(ordinary.begin(), ordinary.end(), 1003), 0);
  const std::string spaces = "two  three   four    five     spaces";
  const TokenIds spaced = tokenizer->encode_ordinary(spaces);
  EXPECT_EQ(spaced, tokenizer->encode(spaces));
  EXPECT_EQ(std::count(spaced.begin(), spaced.end(), 1004), 3);
  // The folder holding it loads the same tokenizer.
  EXPECT_EQ(load_tokenizer(testing::test_data("hf_tokenizer"))->encode(" whaling"), tokenizer->encode(" whaling"));
}

TEST(HfTokenizerJson, IgnoreMergesAndThePatternEachMatter) {
  testing::ScratchDir dir;
  const auto vectors = Json::parse(testing::read_bytes(testing::test_data("hf_tokenizer/vectors.json")));
  auto mismatches = [&](const Json& layout) {
    const auto tokenizer = load_layout(dir, layout);
    int differ = 0;
    for (const auto& vector : vectors) differ += tokenizer->encode(vector["text"].get<std::string>()) != vector["ids"].get<TokenIds>();
    return differ;
  };
  EXPECT_EQ(mismatches(llama_layout()), 0);
  Json layout = llama_layout();
  layout["model"]["ignore_merges"] = false;  // " whaling" and " Ishmael" have no merges to them
  EXPECT_GE(mismatches(layout), 2);
  layout = llama_layout();  // GPT-2's pattern instead of LLaMA 3's: a period and its newline (a merge) split apart
  layout["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  EXPECT_GE(mismatches(layout), 2);
}

// With the normalizer NFC (Qwen2's, GPT-NeoX's), decomposed text encodes as
// its composed form, as in `tokenizers`; without it, otherwise.
TEST(HfTokenizerJson, NfcNormalizerComposesAsHuggingFaceTokenizers) {
  testing::ScratchDir dir;
  Json layout = llama_layout();
  layout["normalizer"] = {{"type", "NFC"}};
  if (!nfc_available()) {
    EXPECT_CONTAINS(testing::error_message([&] { load_layout(dir, layout); }), "normalizer NFC needs ICU");
    GTEST_SKIP() << "built without ICU";
  }
  const auto with_nfc = load_layout(dir, layout);
  const auto vectors = Json::parse(testing::read_bytes(testing::test_data("hf_tokenizer/vectors_nfc.json")));
  ASSERT_EQ(vectors.size(), 3u);
  for (const auto& vector : vectors) {
    EXPECT_EQ(with_nfc->encode(vector["text"].get<std::string>()), vector["ids"].get<TokenIds>()) << vector["text"];
  }
  const auto without = load_layout(dir, llama_layout());
  EXPECT_NE(without->encode(vectors[0]["text"].get<std::string>()), vectors[0]["ids"].get<TokenIds>());
  EXPECT_NE(without->encode(vectors[1]["text"].get<std::string>()), vectors[1]["ids"].get<TokenIds>());
  // Invalid UTF-8 between valid runs is kept as bytes, each run normalized.
  const std::string mixed = std::string("cafe\xCC\x81") + "\xFF" + "e\xCC\x81";
  EXPECT_EQ(nfc_normalized(mixed), std::string("caf\xC3\xA9") + "\xFF" + "\xC3\xA9");
  EXPECT_EQ(with_nfc->decode(with_nfc->encode(mixed)), nfc_normalized(mixed));
}

// GPT-2's encoder.json and vocab.bpe as transformers' tokenizer.json holds
// them (merges as "left right" strings, the older format).
Json gpt2_layout() {
  const auto folder = gpt2_files_folder("gpt2");
  Json vocab = Json::parse(read_whole_file(*folder + "/encoder.json"));
  Json merges = Json::array();
  std::istringstream lines(read_whole_file(*folder + "/vocab.bpe"));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.rfind("#version", 0) != 0) merges.push_back(line);
  }
  return {{"version", "1.0"},
          {"added_tokens", {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}}},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
                     {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"vocab", vocab}, {"merges", merges}}}};
}

TEST(HfTokenizerJson, GptTwosTokenizerJsonGivesOpenAisIds) {
  testing::ScratchDir dir;
  const auto tokenizer = load_layout(dir, gpt2_layout());
  EXPECT_EQ(tokenizer->vocab_size(), 50257);
  EXPECT_EQ(tokenizer->eot_token(), 50256);
  for (const char* file : {"gpt2_test_vectors.json", "gpt2_edge_vectors.json"}) {
    for (const auto& vector : Json::parse(testing::read_bytes(testing::test_data(file)))) {
      const std::string text = vector["text"];
      EXPECT_EQ(tokenizer->encode(text), vector["ids"].get<TokenIds>()) << file << ": " << text;
    }
  }
}

TEST(HfTokenizerJson, WhatItCannotReproduceIsRefusedByName) {
  testing::ScratchDir dir;
  auto error_of = [&](const Json& layout) { return testing::error_message([&] { load_layout(dir, layout); }); };
  Json layout = llama_layout();
  layout["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_CONTAINS(error_of(layout), "normalizer {\"type\":\"Lowercase\"} is not supported: muonlab applies none or NFC");
  layout = llama_layout();
  layout["model"]["type"] = "Unigram";
  EXPECT_CONTAINS(error_of(layout), "model type Unigram is not supported: expected BPE");
  layout = llama_layout();
  layout["model"]["byte_fallback"] = true;
  EXPECT_CONTAINS(error_of(layout), "model.byte_fallback = true is not supported");
  layout = llama_layout();
  layout["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true;
  EXPECT_CONTAINS(error_of(layout), "ByteLevel with add_prefix_space = true is not supported");
  layout = llama_layout();
  layout["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_CONTAINS(error_of(layout), "pre_tokenizer {\"type\":\"Whitespace\"} is not supported");
  layout = llama_layout();
  layout["added_tokens"][2]["id"] = 1010;
  EXPECT_CONTAINS(error_of(layout), "added token '   ' has id 1010; expected the next id, 1004");
  layout = llama_layout();
  layout["added_tokens"][1]["lstrip"] = true;
  EXPECT_CONTAINS(error_of(layout), "added token '<|end_of_text|>' has lstrip = true, which is not supported");
  layout = llama_layout();
  layout["added_tokens"] = Json::array();
  EXPECT_CONTAINS(error_of(layout), "has none of the tokens that separate documents: <|endoftext|>, <|begin_of_text|>");
  layout = llama_layout();
  layout["model"]["merges"][3] = "nospace";
  EXPECT_CONTAINS(error_of(layout), "model.merges entry \"nospace\" is not a merge");
  layout = llama_layout();
  layout["model"]["merges"][5] = Json::array({"Ġ", "not-a-token"});
  EXPECT_CONTAINS(error_of(layout), "merge 5: token 'not-a-token' is not in the vocabulary");
  testing::write_bytes(dir.file("broken.json"), "{\"model\": ");
  EXPECT_CONTAINS(testing::error_message([&] { load_tokenizer(dir.file("broken.json")); }), "broken.json' is not valid JSON");
}

}  // namespace
}  // namespace muonlab::data
