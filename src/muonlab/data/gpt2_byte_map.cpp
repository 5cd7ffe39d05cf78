#include "muonlab/data/gpt2_byte_map.h"

namespace muonlab::data {
namespace {

std::string utf8_of(char32_t code_point) {
  // Code points here are below 0x800: one or two UTF-8 bytes.
  std::string out;
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
  return out;
}

bool is_printable_as_itself(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

std::array<std::string, 256> build_spellings() {
  // Printable bytes stand for themselves (as Latin-1 code points); the others
  // take code points 256, 257, ... in byte order.
  std::array<std::string, 256> spellings;
  char32_t next_free = 256;
  for (int byte = 0; byte < 256; ++byte) {
    spellings[byte] = utf8_of(is_printable_as_itself(byte) ? static_cast<char32_t>(byte) : next_free++);
  }
  return spellings;
}

}  // namespace

const std::array<std::string, 256>& gpt2_byte_spellings() {
  static const std::array<std::string, 256> spellings = build_spellings();
  return spellings;
}

}  // namespace muonlab::data
