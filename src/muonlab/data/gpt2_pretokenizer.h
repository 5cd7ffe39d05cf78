// GPT-2's pre-tokenizer (or another pattern's): splits text into the pieces
// that BPE merges within,
// with OpenAI's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// through PCRE2 (JIT-compiled, Unicode properties; U+180E is not whitespace,
// as in Python's `regex`, which OpenAI's encoder uses). Bytes that are not valid
// UTF-8 match no alternative; each run of them becomes a piece of its own, so
// the pieces always cover the text and any byte string round-trips.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace muonlab::data {

class Gpt2Pretokenizer {
 public:
  Gpt2Pretokenizer();
  // Another byte-level BPE's pattern (LLaMA 3's, from a tokenizer.json),
  // compiled with the same options; fails naming the offset where it does
  // not compile.
  explicit Gpt2Pretokenizer(const std::string& pattern);
  ~Gpt2Pretokenizer();
  Gpt2Pretokenizer(const Gpt2Pretokenizer&) = delete;
  Gpt2Pretokenizer& operator=(const Gpt2Pretokenizer&) = delete;

  // Calls `on_piece` for each piece, in order. Safe to call from many threads.
  void split(std::string_view text, const std::function<void(std::string_view)>& on_piece) const;

 private:
  struct Pattern;
  std::unique_ptr<Pattern> pattern_;
};

}  // namespace muonlab::data
