// libFuzzer target for the tokenizers (tokenizer.h): GPT-2's byte-level BPE,
// loaded once through load_tokenizer("gpt2"), and the byte tokenizer. The
// input is arbitrary bytes, often not valid UTF-8. Properties:
//   - encode_ordinary and encode never throw; every id is in [0, vocab_size).
//   - decode(encode_ordinary(x)) == x and decode(encode(x)) == x, byte for
//     byte (<|endoftext|> decodes to its own text).
//   - encode_ordinary never yields the <|endoftext|> id; encode yields it
//     once per occurrence of "<|endoftext|>" in x, and equals
//     encode_ordinary(x) when x has none.
//   - Encoding is deterministic: a second encode (through the per-thread
//     piece cache) gives the same ids.
//   - The byte tokenizer gives one id per byte, the byte itself.
//   - decode of the input read as little-endian int32 ids (mostly out of
//     range) and as uint16 ids folded into [0, vocab_size] (mostly in range)
//     returns a string exactly when every id is in range, and otherwise
//     throws muonlab::Error; the string is the concatenation of the tokens'
//     own decodings, and it round-trips through encode_ordinary as text.
// A violated property prints what and traps, so libFuzzer saves the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "muonlab/core/errors.h"
#include "muonlab/data/tokenizer.h"

namespace {

using muonlab::data::kEndOfText;
using muonlab::data::TokenIds;
using muonlab::data::Tokenizer;

std::unique_ptr<Tokenizer> gpt2;
std::unique_ptr<Tokenizer> bytes;

[[noreturn]] void violated(const Tokenizer& tokenizer, const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "fuzz_tokenizer: %s tokenizer: property violated: %s%s%s\n", tokenizer.name().c_str(),
               what, detail.empty() ? "" : ": ", detail.c_str());
  __builtin_trap();
}

size_t count_end_of_text(std::string_view text) {
  size_t count = 0;
  for (size_t at = text.find(kEndOfText); at != std::string_view::npos; at = text.find(kEndOfText, at + kEndOfText.size())) {
    ++count;
  }
  return count;
}

void check_ids_in_range(const Tokenizer& tokenizer, const TokenIds& ids, const char* from) {
  for (int32_t id : ids) {
    if (id < 0 || id >= tokenizer.vocab_size()) violated(tokenizer, from, "id " + std::to_string(id) + " out of range");
  }
}

std::string decode_or_trap(const Tokenizer& tokenizer, const TokenIds& ids, const char* from) {
  try {
    return tokenizer.decode(ids);
  } catch (const std::exception& error) {
    violated(tokenizer, from, std::string("decode of in-range ids threw: ") + error.what());
  }
}

TokenIds encode_or_trap(const Tokenizer& tokenizer, std::string_view text, bool special) {
  try {
    return special ? tokenizer.encode(text) : tokenizer.encode_ordinary(text);
  } catch (const std::exception& error) {
    violated(tokenizer, special ? "encode threw" : "encode_ordinary threw", error.what());
  }
}

void check_encoding(const Tokenizer& tokenizer, std::string_view text) {
  TokenIds ordinary = encode_or_trap(tokenizer, text, false);
  check_ids_in_range(tokenizer, ordinary, "encode_ordinary");
  if (decode_or_trap(tokenizer, ordinary, "encode_ordinary") != text) {
    violated(tokenizer, "decode(encode_ordinary(x)) != x");
  }
  for (int32_t id : ordinary) {
    if (id == tokenizer.eot_token()) violated(tokenizer, "encode_ordinary yielded <|endoftext|>");
  }
  if (encode_or_trap(tokenizer, text, false) != ordinary) violated(tokenizer, "encode_ordinary is not deterministic");

  TokenIds special = encode_or_trap(tokenizer, text, true);
  check_ids_in_range(tokenizer, special, "encode");
  if (decode_or_trap(tokenizer, special, "encode") != text) violated(tokenizer, "decode(encode(x)) != x");
  size_t eot = 0;
  for (int32_t id : special) eot += id == tokenizer.eot_token();
  size_t occurrences = count_end_of_text(text);
  if (eot != occurrences) {
    violated(tokenizer, "encode's <|endoftext|> ids disagree with the text",
             std::to_string(eot) + " ids, " + std::to_string(occurrences) + " in the text");
  }
  if (occurrences == 0 && special != ordinary) violated(tokenizer, "encode != encode_ordinary without specials");
}

void check_byte_ids(std::string_view text) {
  TokenIds ids = bytes->encode_ordinary(text);
  if (ids.size() != text.size()) violated(*bytes, "not one id per byte");
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != static_cast<unsigned char>(text[i])) violated(*bytes, "id is not the byte");
  }
}

// decode(ids) returns exactly when every id is in range, and then equals the
// concatenation of the ids' own decodings; that string round-trips as text.
void check_decode(const Tokenizer& tokenizer, const TokenIds& ids) {
  bool in_range = true;
  for (int32_t id : ids) in_range = in_range && id >= 0 && id < tokenizer.vocab_size();
  std::string text;
  try {
    text = tokenizer.decode(ids);
  } catch (const muonlab::Error& error) {
    if (in_range) violated(tokenizer, "decode rejected in-range ids", error.what());
    return;
  }
  if (!in_range) violated(tokenizer, "decode accepted an out-of-range id");
  std::string pieces;
  for (int32_t id : ids) pieces += decode_or_trap(tokenizer, TokenIds{id}, "decode of one id");
  if (pieces != text) violated(tokenizer, "decode differs from its tokens' decodings");
  check_encoding(tokenizer, text);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  try {
    gpt2 = muonlab::data::load_tokenizer("gpt2");
    bytes = muonlab::data::load_tokenizer("byte");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "fuzz_tokenizer: cannot load the GPT-2 tokenizer: %s\n", error.what());
    std::exit(1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_encoding(*gpt2, text);
  check_encoding(*bytes, text);
  check_byte_ids(text);

  TokenIds raw, folded;
  for (size_t at = 0; at + 4 <= size; at += 4) {
    raw.push_back(static_cast<int32_t>(static_cast<uint32_t>(data[at]) | static_cast<uint32_t>(data[at + 1]) << 8 |
                                       static_cast<uint32_t>(data[at + 2]) << 16 |
                                       static_cast<uint32_t>(data[at + 3]) << 24));
  }
  for (size_t at = 0; at + 2 <= size; at += 2) folded.push_back(data[at] | data[at + 1] << 8);
  for (const Tokenizer* tokenizer : {gpt2.get(), bytes.get()}) {
    check_decode(*tokenizer, raw);
    TokenIds in_vocab = folded;
    for (int32_t& id : in_vocab) id %= tokenizer->vocab_size() + 1;  // vocab_size itself is out of range
    check_decode(*tokenizer, in_vocab);
  }
  return 0;
}
