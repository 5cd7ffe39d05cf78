#include "muonlab/data/hf_tokenizer_json.h"

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <nlohmann/json.hpp>

#include <unordered_map>
#include <utility>
#include <vector>

#include "muonlab/core/errors.h"
#include "muonlab/core/read_file.h"
#include "muonlab/data/unicode_nfc.h"

namespace muonlab::data {
namespace {

using Json = nlohmann::json;

// The separators, in the order they are looked for (see the header).
constexpr const char* kDocumentSeparators[] = {"<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>"};

std::string type_of(const Json& node) { return node.is_object() ? node.value("type", std::string("?")) : "?"; }

// A field that must be absent, null, false or empty for muonlab to encode
// as Hugging Face does.
void require_unset(const Json& model, const char* field, const std::string& path) {
  const auto value = model.find(field);
  if (value == model.end() || value->is_null() || (value->is_boolean() && !value->get<bool>()) ||
      (value->is_string() && value->get<std::string>().empty())) {
    return;
  }
  fail("'{}': model.{} = {} is not supported (muonlab reads byte-level BPE without it)", path, field, value->dump());
}

void check_byte_level(const Json& step, bool use_regex, const std::string& path) {
  if (step.value("add_prefix_space", false)) {
    fail("'{}': pre_tokenizer ByteLevel with add_prefix_space = true is not supported", path);
  }
  if (step.value("use_regex", true) != use_regex) {
    fail("'{}': pre_tokenizer ByteLevel with use_regex = {} {}", path, step.value("use_regex", true) ? "true" : "false",
         use_regex ? "alone: expected use_regex = true (GPT-2's pattern)"
                   : "after a Split: expected use_regex = false (the Split's pattern alone splits)");
  }
}

// The split pattern: "" for GPT-2's (ByteLevel with use_regex), or the
// regex of a Split before a ByteLevel (LLaMA 3's layout).
std::string split_pattern(const Json& pre_tokenizer, const std::string& path) {
  const std::string type = type_of(pre_tokenizer);
  if (type == "ByteLevel") {
    check_byte_level(pre_tokenizer, /*use_regex=*/true, path);
    return "";
  }
  const Json steps = pre_tokenizer.value("pretokenizers", Json::array());
  if (type != "Sequence" || steps.size() != 2 || type_of(steps[0]) != "Split" || type_of(steps[1]) != "ByteLevel") {
    fail("'{}': pre_tokenizer {} is not supported: expected ByteLevel, or a Sequence of a Split by a regex and a "
         "ByteLevel",
         path, pre_tokenizer.dump().substr(0, 200));
  }
  const Json& split = steps[0];
  const Json pattern = split.value("pattern", Json::object());
  if (!pattern.contains("Regex") || split.value("behavior", std::string()) != "Isolated" ||
      split.value("invert", false)) {
    fail("'{}': pre_tokenizer Split {} is not supported: expected a Regex pattern, behavior Isolated, invert false",
         path, split.dump().substr(0, 200));
  }
  check_byte_level(steps[1], /*use_regex=*/false, path);
  return pattern["Regex"].get<std::string>();
}

// Whether text is NFC-normalized first: no normalizer, or NFC (Qwen2's,
// GPT-NeoX's), which needs ICU in the build; any other is refused.
bool reads_nfc(const Json& normalizer, const std::string& path) {
  if (normalizer.is_null()) return false;
  if (type_of(normalizer) != "NFC") {
    fail("'{}': normalizer {} is not supported: muonlab applies none or NFC", path, normalizer.dump().substr(0, 200));
  }
  if (!nfc_available()) {
    fail("'{}': normalizer NFC needs ICU, and this muonlab was built without it: install libicu-dev and rebuild",
         path);
  }
  return true;
}

std::unordered_map<std::string, int32_t> vocabulary(const Json& model, const std::string& path) {
  const Json& vocab = model.at("vocab");
  if (!vocab.is_object() || vocab.empty()) fail("'{}': model.vocab: expected an object of token -> id", path);
  std::unordered_map<std::string, int32_t> ids;
  for (const auto& [spelling, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= static_cast<int64_t>(vocab.size())) {
      fail("'{}': model.vocab token '{}' has id {}; expected an integer in [0, {})", path, spelling, id.dump(),
           vocab.size());
    }
    ids.emplace(spelling, id.get<int32_t>());
  }
  return ids;
}

// Merges as "left right" strings (tokenizers before 0.20) or [left, right]
// pairs (0.20 and later).
std::vector<std::pair<std::string, std::string>> merge_pairs(const Json& model, const std::string& path) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const Json& merge : model.at("merges")) {
    if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      pairs.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
      continue;
    }
    const std::string text = merge.is_string() ? merge.get<std::string>() : "";
    const size_t space = text.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == text.size() ||
        text.find(' ', space + 1) != std::string::npos) {
      fail("'{}': model.merges entry {} is not a merge: expected \"left right\" or [\"left\", \"right\"]", path,
           merge.dump());
    }
    pairs.emplace_back(text.substr(0, space), text.substr(space + 1));
  }
  return pairs;
}

// Added tokens as (text, id). Non-special ones (GPT-NeoX's runs of spaces)
// are found in text by every encode, as transformers finds them; special
// ones only where special tokens are allowed (`encode`, not
// `encode_ordinary`). Matching flags muonlab does not apply are refused.
std::vector<std::pair<std::string, int>> added_tokens(const Json& layout, const std::string& path,
                                                      std::vector<std::pair<std::string, int>>* non_special) {
  std::vector<std::pair<std::string, int>> added;
  for (const Json& token : layout.value("added_tokens", Json::array())) {
    if (!token.contains("content") || !token.contains("id")) {
      fail("'{}': added token {} lacks content or id", path, token.dump());
    }
    const std::string content = token["content"].get<std::string>();
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      if (token.value(flag, false)) {
        fail("'{}': added token '{}' has {} = true, which is not supported", path, content, flag);
      }
    }
    added.emplace_back(content, token["id"].get<int>());
    if (!token.value("special", false)) non_special->push_back(added.back());
  }
  return added;
}

std::string document_separator(const std::unordered_map<std::string, int32_t>& vocab,
                               const std::vector<std::pair<std::string, int>>& added, const std::string& path) {
  for (const char* separator : kDocumentSeparators) {
    if (vocab.count(separator) != 0) return separator;
    for (const auto& token : added) {
      if (token.first == separator) return separator;
    }
  }
  fail("'{}' has none of the tokens that separate documents: {}", path, fmt::join(kDocumentSeparators, ", "));
}

}  // namespace

std::unique_ptr<Gpt2Tokenizer> load_tokenizer_json(const std::string& path) {
  Json layout;
  try {
    layout = Json::parse(read_whole_file(path));
  } catch (const Json::exception& error) {
    fail("'{}' is not valid JSON: {}", path, error.what());
  }
  try {
    if (!layout.is_object() || !layout.contains("model")) fail("'{}' is not a tokenizer.json: it has no model", path);
    const Json& model = layout["model"];
    if (type_of(model) != "BPE") fail("'{}': model type {} is not supported: expected BPE", path, type_of(model));
    BpeVariant variant;
    variant.nfc = reads_nfc(layout.value("normalizer", Json()), path);
    for (const char* field : {"dropout", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback"}) {
      require_unset(model, field, path);
    }
    variant.name = path;
    variant.pattern = split_pattern(layout.value("pre_tokenizer", Json()), path);
    variant.ignore_merges = model.value("ignore_merges", false);
    const auto vocab = vocabulary(model, path);
    const auto added = added_tokens(layout, path, &variant.plain_added_tokens);
    variant.special_tokens = added;
    return Gpt2Tokenizer::from_spellings(vocab, merge_pairs(model, path), added, document_separator(vocab, added, path),
                                         std::move(variant), path);
  } catch (const Json::exception& error) {
    fail("'{}': {}", path, error.what());
  }
}

}  // namespace muonlab::data
