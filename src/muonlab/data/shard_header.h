// The header of a token shard in llm.c's formats (also modded-nanogpt's, and
// FineWeb's as llm.c ships it): 256 little-endian int32, [0] magic, [1]
// version, [2] token count; then the tokens, little-endian. Two formats:
//   uint16 tokens: magic 20240520, version 1 (GPT-2's 50,257 ids)
//   uint32 tokens: magic 20240801, version 7 (LLaMA 3's 128,256 ids)
// Kept free of LibTorch so the fuzz target builds it alone.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace muonlab::data {

struct ShardFormat {
  int32_t magic;
  int32_t version;
  int token_bytes;  // 2 or 4
};
inline constexpr ShardFormat kUint16Shards{20240520, 1, 2};
inline constexpr ShardFormat kUint32Shards{20240801, 7, 4};
inline constexpr size_t kShardHeaderBytes = 256 * sizeof(int32_t);
inline constexpr uint64_t kMaxShardTokens = 2147483647;  // the count is an int32

// The format for a tokenizer's ids: uint16 while every id fits (vocab_size
// <= 65536), else uint32, as llm.c chooses between GPT-2 and LLaMA 3.
const ShardFormat& shard_format_for_vocab(int64_t vocab_size);

struct ShardHeader {
  uint64_t token_count;
  int token_bytes;
};

// Validates the first `available` bytes of the file at `path` (the header,
// if the file is long enough) against its size in bytes. Fails naming
// `path` and the bad value for a short file, an unknown magic, a version
// that is not its magic's, a negative count, or a count that disagrees with
// the size.
ShardHeader parse_shard_header(const unsigned char* bytes, size_t available, uint64_t file_size,
                               const std::string& path);

// The header bytes for a shard of `token_count` tokens in `format`.
std::array<unsigned char, kShardHeaderBytes> make_shard_header(uint64_t token_count,
                                                               const ShardFormat& format = kUint16Shards);

}  // namespace muonlab::data
