// Unicode NFC of UTF-8 text, through ICU where the build has it: what a
// tokenizer.json whose normalizer is NFC (Qwen2's, GPT-NeoX's) does to text
// before splitting it. Runs of invalid UTF-8 are left as they are (Hugging
// Face's tokenizers never see any), and the valid runs between them are
// normalized one by one.
#pragma once

#include <string>
#include <string_view>

namespace muonlab::data {

// False where muonlab was built without ICU: NFC then fails by name.
bool nfc_available();

std::string nfc_normalized(std::string_view text);

}  // namespace muonlab::data
