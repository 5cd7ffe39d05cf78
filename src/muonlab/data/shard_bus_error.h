#pragma once
// A memory-mapped shard that is truncated or replaced while a run reads it
// raises SIGBUS on the next touch of a page past its new end, which would
// kill the process without a word. These register each mapping, and a
// SIGBUS handler that finds the faulting address in one of them names the
// shard and exits 1 (the run resumes from its last checkpoint once the shard
// is restored). A SIGBUS outside every mapping keeps the default action.
#include <cstddef>
#include <string>

namespace muonlab::data {

// Registers `bytes` bytes mapped at `begin` from `path` (installing the
// handler on first use). Returns a slot for unregister_shard_mapping, or -1
// when every slot is taken (the mapping then just goes unnamed).
int register_shard_mapping(const void* begin, size_t bytes, const std::string& path);

void unregister_shard_mapping(int slot);

}  // namespace muonlab::data
