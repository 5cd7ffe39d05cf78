#include "muonlab/data/gpt2_pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "muonlab/core/errors.h"

namespace muonlab::data {
namespace {

// OpenAI's pattern with one correction for PCRE2: its \s still counts U+180E
// (Mongolian vowel separator) as a space, which Unicode stopped doing in 6.3
// and Python's `regex` does not. So whitespace is spelled [^\S\x{180E}] and
// U+180E joins the "other" class.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?(?:[^\s\p{L}\p{N}]|\x{180E})+)"
    R"(|[^\S\x{180E}]+(?!\S|\x{180E})|[^\S\x{180E}]+)";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// One match buffer per thread, since pcre2_match writes into it. The pattern
// has no capture groups: one pair of offsets is all a match needs.
struct MatchData {
  MatchData() : data(pcre2_match_data_create(1, nullptr)) {}
  ~MatchData() { pcre2_match_data_free(data); }
  pcre2_match_data* data;
};

}  // namespace

struct Gpt2Pretokenizer::Pattern {
  pcre2_code* code = nullptr;
  ~Pattern() { pcre2_code_free(code); }
};

Gpt2Pretokenizer::Gpt2Pretokenizer() : Gpt2Pretokenizer(kGpt2Pattern) {}

Gpt2Pretokenizer::Gpt2Pretokenizer(const std::string& pattern) : pattern_(std::make_unique<Pattern>()) {
  // UCP: \s, \p{L}, \p{N} by Unicode properties, as Python's `regex` module.
  // MATCH_INVALID_UTF: invalid UTF-8 is skipped by the matcher instead of
  // rejecting the whole subject.
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pattern_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code,
                                 &error_offset, nullptr);
  if (pattern_->code == nullptr) {
    fail("pre-tokenizer pattern '{}' does not compile at offset {}: {}", pattern, error_offset,
         pcre2_message(error_code));
  }
  // Without JIT (some platforms) PCRE2 interprets the pattern: slower, same result.
  pcre2_jit_compile(pattern_->code, PCRE2_JIT_COMPLETE);
}

Gpt2Pretokenizer::~Gpt2Pretokenizer() = default;

void Gpt2Pretokenizer::split(std::string_view text,
                             const std::function<void(std::string_view)>& on_piece) const {
  thread_local MatchData match;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset < text.size()) {
    int result = pcre2_match(pattern_->code, subject, text.size(), offset, 0, match.data, nullptr);
    if (result == PCRE2_ERROR_NOMATCH) break;
    if (result < 0) fail("pre-tokenizer failed at byte {}: {}", offset, pcre2_message(result));
    const PCRE2_SIZE* bounds = pcre2_get_ovector_pointer(match.data);
    size_t begin = bounds[0], end = bounds[1];
    if (begin > offset) on_piece(text.substr(offset, begin - offset));  // invalid UTF-8
    on_piece(text.substr(begin, end - begin));
    offset = end;
  }
  if (offset < text.size()) on_piece(text.substr(offset));
}

}  // namespace muonlab::data
