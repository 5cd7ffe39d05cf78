#include "muonlab/data/gpt2_tokenizer.h"

#include <algorithm>
#include <atomic>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "muonlab/core/errors.h"
#include "muonlab/core/read_file.h"
#include "muonlab/data/gpt2_byte_map.h"
#include "muonlab/data/unicode_nfc.h"

namespace muonlab::data {
namespace {

// Pieces longer than this are merged every time: they are rare (long runs of
// spaces or symbols) and would crowd the cache.
constexpr size_t kMaxCachedPieceBytes = 64;
constexpr size_t kMaxCachedPieces = 1 << 18;

// Turns a token's spelling in GPT-2's printable alphabet back into bytes.
class SpellingDecoder {
 public:
  SpellingDecoder() {
    const auto& spellings = gpt2_byte_spellings();
    for (int byte = 0; byte < 256; ++byte) byte_of_[spellings[byte]] = static_cast<char>(byte);
  }

  std::string bytes_of(const std::string& spelling, const std::string& path) const {
    std::string bytes;
    for (size_t i = 0; i < spelling.size();) {
      size_t length = (static_cast<unsigned char>(spelling[i]) < 0x80) ? 1 : 2;
      auto it = byte_of_.find(spelling.substr(i, length));
      if (it == byte_of_.end()) {
        fail("'{}': token '{}' has a character outside GPT-2's byte alphabet at byte {}", path, spelling, i);
      }
      bytes.push_back(it->second);
      i += length;
    }
    return bytes;
  }

 private:
  std::unordered_map<std::string, char> byte_of_;
};

using Encoder = std::unordered_map<std::string, int32_t>;

Encoder read_encoder(const std::string& path) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(read_whole_file(path));
  } catch (const nlohmann::json::exception& error) {
    fail("'{}' is not valid JSON: {}", path, error.what());
  }
  if (!json.is_object() || json.empty()) fail("'{}': expected a JSON object of token -> id", path);
  Encoder encoder;
  for (const auto& [spelling, id] : json.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= static_cast<int64_t>(json.size())) {
      fail("'{}': token '{}' has id {}; expected an integer in [0, {})", path, spelling, id.dump(), json.size());
    }
    encoder.emplace(spelling, id.get<int32_t>());
  }
  return encoder;
}

std::vector<std::string> token_bytes_by_id(const Encoder& encoder, const std::string& path) {
  SpellingDecoder decoder;
  std::vector<std::string> token_bytes(encoder.size());
  std::vector<bool> seen(encoder.size(), false);
  for (const auto& [spelling, id] : encoder) {
    if (seen[id]) fail("'{}': id {} is given to two tokens", path, id);
    seen[id] = true;
    token_bytes[id] = decoder.bytes_of(spelling, path);
  }
  return token_bytes;
}

int32_t id_of(const Encoder& encoder, const std::string& spelling, const std::string& where) {
  auto it = encoder.find(spelling);
  if (it == encoder.end()) fail("{}: token '{}' is not in the vocabulary", where, spelling);
  return it->second;
}

std::vector<BpeMerge> read_merges(const std::string& path, const Encoder& encoder) {
  std::istringstream lines(read_whole_file(path));
  std::vector<BpeMerge> merges;
  std::unordered_map<std::string, int> first_line_of_pair;
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.empty() || (number == 1 && line.rfind("#version", 0) == 0)) continue;
    std::string where = fmt::format("'{}' line {}", path, number);
    size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      fail("{}: expected two tokens separated by one space, got '{}'", where, line);
    }
    auto [previous, inserted] = first_line_of_pair.emplace(line, number);
    if (!inserted) fail("{}: merge '{}' repeats line {}", where, line, previous->second);
    std::string left = line.substr(0, space), right = line.substr(space + 1);
    merges.push_back({id_of(encoder, left, where), id_of(encoder, right, where), id_of(encoder, left + right, where)});
  }
  if (merges.empty()) fail("'{}' holds no merges", path);
  return merges;
}

std::array<int32_t, 256> byte_token_ids(const Encoder& encoder, const std::string& path) {
  std::array<int32_t, 256> ids{};
  const auto& spellings = gpt2_byte_spellings();
  for (int byte = 0; byte < 256; ++byte) ids[byte] = id_of(encoder, spellings[byte], fmt::format("'{}' (byte {})", path, byte));
  return ids;
}

std::vector<BpeMerge> merges_of_pairs(const Encoder& encoder,
                                      const std::vector<std::pair<std::string, std::string>>& pairs,
                                      const std::string& source) {
  std::vector<BpeMerge> merges;
  merges.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::string where = fmt::format("'{}' merge {}", source, i);
    const auto& [left, right] = pairs[i];
    merges.push_back({id_of(encoder, left, where), id_of(encoder, right, where), id_of(encoder, left + right, where)});
  }
  if (merges.empty()) fail("'{}' holds no merges", source);
  return merges;
}

// The vocabulary's token bytes, then the added tokens': each after the
// last id, or the text of the vocabulary token it names again.
std::vector<std::string> with_added_tokens(std::vector<std::string> token_bytes,
                                           const std::vector<std::pair<std::string, int>>& added,
                                           const std::string& source) {
  std::vector<std::pair<std::string, int>> by_id = added;
  std::sort(by_id.begin(), by_id.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  for (const auto& [text, id] : by_id) {
    if (id == static_cast<int>(token_bytes.size())) {
      token_bytes.push_back(text);
    } else if (id < 0 || id > static_cast<int>(token_bytes.size()) || token_bytes[id] != text) {
      fail("'{}': added token '{}' has id {}; expected the next id, {}, or the id of the same token in the vocabulary",
           source, text, id, token_bytes.size());
    }
  }
  return token_bytes;
}

uint64_t next_cache_owner() {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}

struct PieceCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, TokenIds> pieces;
};

}  // namespace

std::unique_ptr<Gpt2Tokenizer> Gpt2Tokenizer::load(const std::string& folder) {
  std::string encoder_path = folder + "/encoder.json";
  std::string merges_path = folder + "/vocab.bpe";
  Encoder encoder = read_encoder(encoder_path);
  std::vector<BpeMerge> merges = read_merges(merges_path, encoder);
  BpeMerges bpe(byte_token_ids(encoder, encoder_path), merges);
  int32_t eot = id_of(encoder, std::string(kEndOfText), "'" + encoder_path + "'");
  return std::make_unique<Gpt2Tokenizer>(token_bytes_by_id(encoder, encoder_path), std::move(bpe), eot);
}

std::unique_ptr<Gpt2Tokenizer> Gpt2Tokenizer::from_spellings(
    const std::unordered_map<std::string, int32_t>& vocab,
    const std::vector<std::pair<std::string, std::string>>& merges,
    const std::vector<std::pair<std::string, int>>& added, const std::string& end_of_document,
    BpeVariant variant, const std::string& source) {
  BpeMerges bpe(byte_token_ids(vocab, source), merges_of_pairs(vocab, merges, source));
  std::vector<std::string> token_bytes = token_bytes_by_id(vocab, source);
  variant.regular_tokens = static_cast<int>(token_bytes.size());
  token_bytes = with_added_tokens(std::move(token_bytes), added, source);
  int end_of_document_id = -1;
  for (int id = 0; id < static_cast<int>(token_bytes.size()); ++id) {
    if (token_bytes[id] == end_of_document) end_of_document_id = id;
  }
  if (end_of_document_id < 0) fail("'{}' has no token '{}'", source, end_of_document);
  return std::make_unique<Gpt2Tokenizer>(std::move(token_bytes), std::move(bpe), end_of_document_id,
                                         std::move(variant));
}

Gpt2Tokenizer::Gpt2Tokenizer(std::vector<std::string> token_bytes, BpeMerges merges, int eot_token,
                             BpeVariant variant)
    : token_bytes_(std::move(token_bytes)),
      merges_(std::move(merges)),
      eot_token_(eot_token),
      variant_(std::move(variant)),
      pretokenizer_(variant_.pattern.empty() ? Gpt2Pretokenizer() : Gpt2Pretokenizer(variant_.pattern)),
      cache_owner_(next_cache_owner()) {
  if (variant_.ignore_merges) {
    const int regular = variant_.regular_tokens < 0 ? vocab_size() : variant_.regular_tokens;
    for (int id = 0; id < regular; ++id) whole_tokens_.emplace(token_bytes_[id], id);
  }
}

std::vector<std::pair<std::string, int>> Gpt2Tokenizer::special_tokens() const {
  return variant_.special_tokens.empty() ? Tokenizer::special_tokens() : variant_.special_tokens;
}

void Gpt2Tokenizer::encode_piece(std::string_view piece, TokenIds& out) const {
  if (!whole_tokens_.empty()) {
    const auto whole = whole_tokens_.find(std::string(piece));
    if (whole != whole_tokens_.end()) {
      out.push_back(whole->second);
      return;
    }
  }
  if (piece.size() > kMaxCachedPieceBytes) {
    merges_.apply(piece, out);
    return;
  }
  thread_local PieceCache cache;
  if (cache.owner != cache_owner_ || cache.pieces.size() >= kMaxCachedPieces) {
    cache.pieces.clear();
    cache.owner = cache_owner_;
  }
  auto [it, inserted] = cache.pieces.try_emplace(std::string(piece));
  if (inserted) merges_.apply(piece, it->second);
  out.insert(out.end(), it->second.begin(), it->second.end());
}

TokenIds Gpt2Tokenizer::encode_ordinary(std::string_view text) const {
  TokenIds ids;
  ids.reserve(text.size() / 3);
  const std::string normalized = variant_.nfc ? nfc_normalized(text) : std::string();
  if (variant_.nfc) text = normalized;
  // Plain added tokens are cut out first, the leftmost (the longest of
  // those starting there), as transformers' added vocabulary does.
  while (!variant_.plain_added_tokens.empty()) {
    const auto [at, found] = find_first_token(text, variant_.plain_added_tokens);
    if (found == nullptr) break;
    encode_text(text.substr(0, at), ids);
    ids.push_back(found->second);
    text.remove_prefix(at + found->first.size());
  }
  encode_text(text, ids);
  return ids;
}

void Gpt2Tokenizer::encode_text(std::string_view text, TokenIds& out) const {
  pretokenizer_.split(text, [&](std::string_view piece) { encode_piece(piece, out); });
}

std::string Gpt2Tokenizer::decode(const TokenIds& ids) const {
  std::string text;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      fail("token id {} is outside the {} vocabulary (0-{})", id, name() == "gpt2" ? "GPT-2" : "'" + name() + "'",
           vocab_size() - 1);
    }
    text += token_bytes_[id];
  }
  return text;
}

}  // namespace muonlab::data
