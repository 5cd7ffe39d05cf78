// The tokenizer that needs no files: one id per byte (0-255), and id 256 for
// <|endoftext|>, so documents can still be separated (vocabulary 257).
#pragma once

#include "muonlab/data/tokenizer.h"

namespace muonlab::data {

class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int kEndOfTextId = 256;

  std::string name() const override { return "byte"; }
  int vocab_size() const override { return kEndOfTextId + 1; }
  int eot_token() const override { return kEndOfTextId; }
  TokenIds encode_ordinary(std::string_view text) const override;
  std::string decode(const TokenIds& ids) const override;
};

}  // namespace muonlab::data
