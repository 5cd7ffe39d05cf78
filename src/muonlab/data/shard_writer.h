// Writes token shards in llm.c's format, each file atomically: a reader sees
// no shard or a complete one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "muonlab/data/shard_header.h"

namespace muonlab::data {

// Fails naming `path` and the token if one does not fit the format's width.
void write_shard(const std::string& path, const std::vector<int32_t>& tokens,
                 const ShardFormat& format = kUint16Shards);

}  // namespace muonlab::data
