// Token ids to text as they arrive, as a sampler produces them: each id's
// bytes are written once they end a whole UTF-8 character, so a terminal
// never shows half of one. A character split across tokens (byte-level BPE
// splits rare ones) waits for its last byte. The bytes written in the end
// are those of decoding every id together.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "muonlab/data/tokenizer.h"

namespace muonlab::data {

class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::ostream& out) : tokenizer_(tokenizer), out_(out) {}

  // Decodes `id` and writes (and flushes) what now ends a whole character.
  // Ids past the tokenizer's vocabulary (a model's padded rows, as GPT-2's
  // 50304) are written as U+FFFD.
  void add(int64_t id);
  // Writes what is held back: a character cut short by the last token.
  void finish();

 private:
  const Tokenizer& tokenizer_;
  std::ostream& out_;
  std::string pending_;
};

// How many leading bytes of `bytes` can be written without ending inside a
// UTF-8 character: all, less an unfinished multi-byte sequence at the end.
// Bytes that cannot start or continue a character count as whole, so they
// are never held.
size_t complete_utf8_prefix(std::string_view bytes);

}  // namespace muonlab::data
