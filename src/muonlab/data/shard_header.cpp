#include "muonlab/data/shard_header.h"

#include <algorithm>
#include <initializer_list>
#include <string>

#include "muonlab/core/errors.h"

namespace muonlab::data {
namespace {

int32_t read_int32_le(const unsigned char* bytes) {
  uint32_t value = static_cast<uint32_t>(bytes[0]) | static_cast<uint32_t>(bytes[1]) << 8 |
                   static_cast<uint32_t>(bytes[2]) << 16 | static_cast<uint32_t>(bytes[3]) << 24;
  return static_cast<int32_t>(value);
}

void write_int32_le(int32_t value, unsigned char* bytes) {
  auto bits = static_cast<uint32_t>(value);
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<unsigned char>(bits >> (8 * i));
}

// A file given as shards that `data prepare` reads instead (text, JSON
// Lines, Parquet, gzip or Zstandard passed as data.train) gets a hint
// instead of only a wrong magic number.
std::string text_hint(const unsigned char* bytes, size_t available) {
  const size_t looked_at = std::min<size_t>(available, 64);
  if (bytes == nullptr || looked_at == 0) return "";
  const auto starts_with = [&](std::initializer_list<unsigned char> magic) {
    return looked_at >= magic.size() && std::equal(magic.begin(), magic.end(), bytes);
  };
  const char* kind = starts_with({'P', 'A', 'R', '1'})        ? "a Parquet file"
                     : starts_with({0x1f, 0x8b})             ? "gzip"
                     : starts_with({0x28, 0xb5, 0x2f, 0xfd}) ? "Zstandard"
                                                             : nullptr;
  if (kind != nullptr) {
    return fmt::format("; it is {}: make token shards from it with `muonlab data prepare FILE --out FOLDER`", kind);
  }
  for (size_t i = 0; i < looked_at; ++i) {
    const unsigned char c = bytes[i];
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) return "";
  }
  return "; it starts with text: make token shards from text with `muonlab data prepare TEXT --out FOLDER`";
}

}  // namespace

const ShardFormat& shard_format_for_vocab(int64_t vocab_size) {
  return vocab_size <= 65536 ? kUint16Shards : kUint32Shards;
}

ShardHeader parse_shard_header(const unsigned char* bytes, size_t available, uint64_t file_size,
                               const std::string& path) {
  if (file_size < kShardHeaderBytes || available < kShardHeaderBytes) {
    fail("shard '{}' is truncated: {} bytes, but the header alone takes {}{}", path, file_size, kShardHeaderBytes,
         text_hint(bytes, std::min<uint64_t>(available, file_size)));
  }
  const int32_t magic = read_int32_le(bytes);
  const ShardFormat* format = magic == kUint16Shards.magic ? &kUint16Shards
                              : magic == kUint32Shards.magic ? &kUint32Shards
                                                             : nullptr;
  if (format == nullptr) {
    fail("shard '{}' has magic number {}; expected {} (llm.c's uint16 tokens) or {} (uint32 tokens){}", path, magic,
         kUint16Shards.magic, kUint32Shards.magic, text_hint(bytes, available));
  }
  const int32_t version = read_int32_le(bytes + 4);
  if (version != format->version) {
    fail("shard '{}' has format version {}; expected {} with magic {} (uint{} tokens)", path, version,
         format->version, magic, 8 * format->token_bytes);
  }
  const int32_t count = read_int32_le(bytes + 8);
  if (count < 0) fail("shard '{}' has a negative token count {}", path, count);
  const uint64_t expected_size = kShardHeaderBytes + static_cast<uint64_t>(format->token_bytes) * count;
  if (file_size != expected_size) {
    fail("shard '{}' header says {} uint{} tokens ({} bytes with the header), but the file has {} bytes{}", path,
         count, 8 * format->token_bytes, expected_size, file_size, file_size < expected_size ? " (truncated?)" : "");
  }
  return {static_cast<uint64_t>(count), format->token_bytes};
}

std::array<unsigned char, kShardHeaderBytes> make_shard_header(uint64_t token_count, const ShardFormat& format) {
  if (token_count > kMaxShardTokens) {
    fail("a shard holds at most {} tokens (int32 count); got {}", kMaxShardTokens, token_count);
  }
  std::array<unsigned char, kShardHeaderBytes> header{};
  write_int32_le(format.magic, header.data());
  write_int32_le(format.version, header.data() + 4);
  write_int32_le(static_cast<int32_t>(token_count), header.data() + 8);
  return header;
}

}  // namespace muonlab::data
