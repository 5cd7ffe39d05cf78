// The header of a token shard in llm.c's format (also modded-nanogpt's, and
// FineWeb's as llm.c ships it): 256 little-endian int32, [0] magic 20240520,
// [1] version 1, [2] token count; then the tokens as little-endian uint16.
// Kept free of LibTorch so the fuzz target builds it alone.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace muonlab::data {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderBytes = 256 * sizeof(int32_t);
inline constexpr uint64_t kMaxShardTokens = 2147483647;  // the count is an int32

// Validates the first `available` bytes of the file at `path` (the header,
// if the file is long enough) against its size in bytes, and returns the
// token count. Fails naming `path` and the bad value for a short file, wrong
// magic or version, a negative count, or a count that disagrees with the size.
uint64_t parse_shard_header(const unsigned char* bytes, size_t available, uint64_t file_size,
                            const std::string& path);

// The header bytes for a shard of `token_count` tokens.
std::array<unsigned char, kShardHeaderBytes> make_shard_header(uint64_t token_count);

}  // namespace muonlab::data
