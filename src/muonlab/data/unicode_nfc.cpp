#include "muonlab/data/unicode_nfc.h"

#include <algorithm>

#include "muonlab/core/errors.h"

#if MUONLAB_ICU
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/utf8.h>
#endif

namespace muonlab::data {

#if MUONLAB_ICU

namespace {

const icu::Normalizer2& nfc() {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status) || normalizer == nullptr) fail("ICU has no NFC normalizer: {}", u_errorName(status));
  return *normalizer;
}

void append_nfc(std::string_view valid, std::string& out) {
  UErrorCode status = U_ZERO_ERROR;
  icu::StringByteSink<std::string> sink(&out);
  nfc().normalizeUTF8(0, icu::StringPiece(valid.data(), static_cast<int32_t>(valid.size())), sink, nullptr, status);
  if (U_FAILURE(status)) fail("NFC normalization failed: {}", u_errorName(status));
}

}  // namespace

bool nfc_available() { return true; }

std::string nfc_normalized(std::string_view text) {
  // ASCII is its own NFC: most text takes this way out.
  if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return std::string(text);
  }
  std::string out;
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const auto length = static_cast<int32_t>(text.size());
  int32_t run_start = 0;
  for (int32_t i = 0; i < length;) {
    const int32_t start = i;
    UChar32 c = 0;
    U8_NEXT(bytes, i, length, c);
    if (c >= 0) continue;
    append_nfc(text.substr(run_start, start - run_start), out);
    out.append(text.substr(start, i - start));  // the invalid bytes, untouched
    run_start = i;
  }
  append_nfc(text.substr(run_start), out);
  return out;
}

#else

bool nfc_available() { return false; }

std::string nfc_normalized(std::string_view) {
  fail("NFC normalization needs ICU, and this muonlab was built without it: install libicu-dev and rebuild");
}

#endif

}  // namespace muonlab::data
