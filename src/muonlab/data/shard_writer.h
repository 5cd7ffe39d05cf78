// Writes token shards in llm.c's format, each file atomically: a reader sees
// no shard or a complete one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "muonlab/core/atomic_file.h"
#include "muonlab/data/shard_header.h"

namespace muonlab::data {

// One shard written as its tokens arrive, so that memory stays at one
// write's worth however large the shard (data prepare's default of 100M
// tokens would be 400 MB gathered as int32). The header's count is written
// by finish(), which publishes the shard; destroyed unfinished, the writer
// leaves no file.
class ShardFileWriter {
 public:
  ShardFileWriter(std::string path, const ShardFormat& format);

  // Fails naming the shard and the token's position in it if one does not
  // fit the format's width.
  void append(const int32_t* tokens, size_t count);
  void finish();

  uint64_t tokens() const { return tokens_; }
  const std::string& path() const { return file_.path(); }

 private:
  AtomicFileWriter file_;
  ShardFormat format_;
  uint64_t tokens_ = 0;
  std::vector<unsigned char> bytes_;  // the tokens of one append, at the format's width
};

// A whole shard at once.
void write_shard(const std::string& path, const std::vector<int32_t>& tokens,
                 const ShardFormat& format = kUint16Shards);

}  // namespace muonlab::data
