// OpenAI's GPT-2 tokenizer, byte-exact: the GPT-2 pre-tokenizer, then BPE
// merges within each piece, from the original encoder.json and vocab.bpe.
// Merged pieces are cached per thread: English text repeats its words, so
// most pieces skip the merge loop.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "muonlab/data/bpe_merges.h"
#include "muonlab/data/gpt2_pretokenizer.h"
#include "muonlab/data/tokenizer.h"

namespace muonlab::data {

class Gpt2Tokenizer : public Tokenizer {
 public:
  // Reads `folder`/encoder.json and `folder`/vocab.bpe; fails naming the file,
  // line or token that is malformed.
  static std::unique_ptr<Gpt2Tokenizer> load(const std::string& folder);

  // `token_bytes[id]` is the text of token `id`.
  Gpt2Tokenizer(std::vector<std::string> token_bytes, BpeMerges merges, int eot_token);

  std::string name() const override { return "gpt2"; }
  int vocab_size() const override { return static_cast<int>(token_bytes_.size()); }
  int eot_token() const override { return eot_token_; }
  TokenIds encode_ordinary(std::string_view text) const override;
  std::string decode(const TokenIds& ids) const override;

  const BpeMerges& merges() const { return merges_; }

 private:
  void encode_piece(std::string_view piece, TokenIds& out) const;

  std::vector<std::string> token_bytes_;
  BpeMerges merges_;
  int eot_token_;
  Gpt2Pretokenizer pretokenizer_;
  uint64_t cache_owner_;  // tells one tokenizer's per-thread cache from another's
};

}  // namespace muonlab::data
