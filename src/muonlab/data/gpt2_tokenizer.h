// OpenAI's GPT-2 tokenizer, byte-exact: the GPT-2 pre-tokenizer, then BPE
// merges within each piece, from the original encoder.json and vocab.bpe.
// Merged pieces are cached per thread: English text repeats its words, so
// most pieces skip the merge loop.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "muonlab/data/bpe_merges.h"
#include "muonlab/data/gpt2_pretokenizer.h"
#include "muonlab/data/tokenizer.h"

namespace muonlab::data {

// What another byte-level BPE (a Hugging Face tokenizer.json) changes of
// GPT-2's: the split pattern, ignore_merges, and special tokens.
struct BpeVariant {
  std::string name = "gpt2";
  std::string pattern;         // empty: GPT-2's
  // A whole pre-token that is in the vocabulary is that one token, merges
  // or not (Hugging Face's BPE ignore_merges, which LLaMA 3's sets).
  bool ignore_merges = false;
  bool nfc = false;            // text is NFC-normalized first (unicode_nfc.h)
  // (text, id) that `encode` recognizes; empty: <|endoftext|> as eot_token.
  std::vector<std::pair<std::string, int>> special_tokens;
  // (text, id) found in text by `encode_ordinary` too: a tokenizer.json's
  // added tokens that are not special.
  std::vector<std::pair<std::string, int>> plain_added_tokens;
  int regular_tokens = -1;     // ids below this are BPE tokens; -1: all of them
};

class Gpt2Tokenizer : public Tokenizer {
 public:
  // Reads `folder`/encoder.json and `folder`/vocab.bpe; fails naming the file,
  // line or token that is malformed.
  static std::unique_ptr<Gpt2Tokenizer> load(const std::string& folder);

  // A byte-level BPE from its vocabulary and merges spelled in GPT-2's byte
  // alphabet (as encoder.json and a tokenizer.json spell them), and added
  // tokens as (text, id) with ids after the vocabulary's, or equal to the
  // vocabulary token of the same text. Fails naming `source` and the token.
  static std::unique_ptr<Gpt2Tokenizer> from_spellings(
      const std::unordered_map<std::string, int32_t>& vocab,
      const std::vector<std::pair<std::string, std::string>>& merges,
      const std::vector<std::pair<std::string, int>>& added, const std::string& end_of_document,
      BpeVariant variant, const std::string& source);

  // `token_bytes[id]` is the text of token `id`.
  Gpt2Tokenizer(std::vector<std::string> token_bytes, BpeMerges merges, int eot_token, BpeVariant variant = {});

  std::string name() const override { return variant_.name; }
  std::vector<std::pair<std::string, int>> special_tokens() const override;
  int vocab_size() const override { return static_cast<int>(token_bytes_.size()); }
  int eot_token() const override { return eot_token_; }
  TokenIds encode_ordinary(std::string_view text) const override;
  std::string decode(const TokenIds& ids) const override;

  const BpeMerges& merges() const { return merges_; }

 private:
  void encode_piece(std::string_view piece, TokenIds& out) const;
  void encode_text(std::string_view text, TokenIds& out) const;

  std::vector<std::string> token_bytes_;
  BpeMerges merges_;
  int eot_token_;
  BpeVariant variant_;
  std::unordered_map<std::string, int32_t> whole_tokens_;  // bytes -> id, for ignore_merges
  Gpt2Pretokenizer pretokenizer_;
  uint64_t cache_owner_;  // tells one tokenizer's per-thread cache from another's
};

}  // namespace muonlab::data
