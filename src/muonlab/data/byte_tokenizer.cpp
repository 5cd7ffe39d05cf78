#include "muonlab/data/byte_tokenizer.h"

#include "muonlab/core/errors.h"

namespace muonlab::data {

TokenIds ByteTokenizer::encode_ordinary(std::string_view text) const {
  TokenIds ids;
  ids.reserve(text.size());
  for (char c : text) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

std::string ByteTokenizer::decode(const TokenIds& ids) const {
  std::string text;
  text.reserve(ids.size());
  for (int32_t id : ids) {
    if (id == kEndOfTextId) {
      text += kEndOfText;
    } else if (id >= 0 && id < 256) {
      text.push_back(static_cast<char>(id));
    } else {
      fail("token id {} is outside the byte tokenizer's vocabulary (0-{})", id, kEndOfTextId);
    }
  }
  return text;
}

}  // namespace muonlab::data
