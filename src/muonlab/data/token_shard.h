// A token shard on disk, memory-mapped read-only: the loader touches only the
// windows it reads, and many processes share the page cache. If the file
// shrinks while mapped, the read that faults names it (shard_bus_error.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace muonlab::data {

class TokenShard {
 public:
  // Maps `path` and validates its header (see shard_header.h).
  explicit TokenShard(std::string path);
  ~TokenShard();
  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&&) = delete;
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return token_count_; }
  int token_bytes() const { return token_bytes_; }  // 2 (uint16 shards) or 4 (uint32)
  // Token `index`, read as little-endian uint16 or uint32.
  uint32_t operator[](uint64_t index) const {
    const unsigned char* at = tokens_ + static_cast<uint64_t>(token_bytes_) * index;
    const uint32_t low = static_cast<uint32_t>(at[0]) | static_cast<uint32_t>(at[1]) << 8;
    if (token_bytes_ == 2) return low;
    return low | static_cast<uint32_t>(at[2]) << 16 | static_cast<uint32_t>(at[3]) << 24;
  }

 private:
  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  const unsigned char* tokens_ = nullptr;
  uint64_t token_count_ = 0;
  int token_bytes_ = 2;
  int bus_error_slot_ = -1;  // names this shard if it shrinks under the mapping
};

}  // namespace muonlab::data
