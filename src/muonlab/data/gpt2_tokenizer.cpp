#include "muonlab/data/gpt2_tokenizer.h"

#include <atomic>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "muonlab/core/errors.h"
#include "muonlab/core/read_file.h"
#include "muonlab/data/gpt2_byte_map.h"

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
  if (it == encoder.end()) fail("{}: token '{}' is not in encoder.json", where, spelling);
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

Gpt2Tokenizer::Gpt2Tokenizer(std::vector<std::string> token_bytes, BpeMerges merges, int eot_token)
    : token_bytes_(std::move(token_bytes)),
      merges_(std::move(merges)),
      eot_token_(eot_token),
      cache_owner_(next_cache_owner()) {}

void Gpt2Tokenizer::encode_piece(std::string_view piece, TokenIds& out) const {
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
  pretokenizer_.split(text, [&](std::string_view piece) { encode_piece(piece, ids); });
  return ids;
}

std::string Gpt2Tokenizer::decode(const TokenIds& ids) const {
  std::string text;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      fail("token id {} is outside the GPT-2 vocabulary (0-{})", id, vocab_size() - 1);
    }
    text += token_bytes_[id];
  }
  return text;
}

}  // namespace muonlab::data
