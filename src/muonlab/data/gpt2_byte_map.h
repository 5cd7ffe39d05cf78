// GPT-2's reversible map from bytes to printable Unicode characters
// (`bytes_to_unicode` in OpenAI's encoder.py). encoder.json and vocab.bpe
// spell every token in these characters, so loading them needs the map.
#pragma once

#include <array>
#include <string>

namespace muonlab::data {

// UTF-8 spelling of the character that stands for each byte.
const std::array<std::string, 256>& gpt2_byte_spellings();

}  // namespace muonlab::data
