// Writes token shards in llm.c's format, each file atomically: a reader sees
// no shard or a complete one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace muonlab::data {

// Fails naming `path` if a token does not fit the format's uint16.
void write_shard(const std::string& path, const std::vector<int32_t>& tokens);

}  // namespace muonlab::data
