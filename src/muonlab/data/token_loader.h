// Batches of training windows from token shards. A window is T+1 consecutive
// tokens of one shard (inputs = first T, targets = last T); window w of a
// shard starts at token w*T, as in llm.c. One epoch visits every window once:
// in file order, or shuffled with a seed (shard order, then window order
// within each shard, both re-drawn each epoch).
//
// Distributed: the epoch's window stream is cut into global batches of
// world_size * B windows; rank r takes the r-th run of B of each. Ranks see
// disjoint windows and, together, all of them but the last partial global
// batch of each epoch. The cursor (epoch, batch) is the same on every rank;
// saving and restoring it resumes on exactly the next batch.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "muonlab/data/token_shard.h"

namespace muonlab::data {

struct LoaderOptions {
  int64_t batch_size = 8;   // B, per rank
  int64_t seq_len = 1024;   // T
  bool shuffle = false;
  uint64_t seed = 0;
  int rank = 0;
  int world_size = 1;
  // When > 0, every token of every shard is checked to be below it when the
  // loader starts.
  int64_t vocab_size = 0;
};

struct LoaderCursor {
  uint64_t epoch = 0;
  uint64_t batch = 0;  // the next batch within the epoch
  bool operator==(const LoaderCursor& other) const { return epoch == other.epoch && batch == other.batch; }
};

struct Batch {
  torch::Tensor inputs;   // [B, T] int64
  torch::Tensor targets;  // [B, T] int64, inputs shifted by one token
};

// The batch on `device`, each tensor through queued_copy_to
// (core/queued_copy.h): no host sync before the next forward.
Batch to_device(const Batch& batch, const torch::Device& device);

// The shard files `spec` names: one file, a folder (its *.bin files), or a
// glob pattern such as "fineweb_train_*.bin". Sorted; fails if none match.
std::vector<std::string> find_shards(const std::string& spec);

class TokenLoader {
 public:
  TokenLoader(const std::vector<std::string>& shard_paths, LoaderOptions options);

  Batch next();

  LoaderCursor cursor() const { return cursor_; }
  // Fails if the cursor lies beyond this data's epoch length.
  void restore(const LoaderCursor& cursor);

  uint64_t batches_per_epoch() const { return batches_per_epoch_; }
  uint64_t total_windows() const { return window_offsets_.back(); }
  uint64_t total_tokens() const;
  const LoaderOptions& options() const { return options_; }

  // Where this rank's window `index` of batch `cursor.batch` lies: shard
  // number and first token. Exposed for tests of coverage and disjointness.
  std::pair<size_t, uint64_t> window_location(const LoaderCursor& cursor, int64_t index) const;

 private:
  std::pair<size_t, uint64_t> stream_window(uint64_t epoch, uint64_t position) const;
  const std::vector<uint32_t>& window_order(uint64_t epoch, size_t shard) const;
  void check_vocabulary(const TokenShard& shard, uint64_t first, uint64_t count) const;

  LoaderOptions options_;
  std::vector<TokenShard> shards_;
  std::vector<uint64_t> window_offsets_;  // prefix sums of windows per shard, in file order
  uint64_t batches_per_epoch_ = 0;
  LoaderCursor cursor_;

  // Shuffled order of the current epoch, and of the last shard visited.
  mutable uint64_t order_epoch_ = UINT64_MAX;
  mutable std::vector<uint32_t> shard_order_;
  mutable std::vector<uint64_t> shuffled_offsets_;
  mutable size_t windows_shard_ = SIZE_MAX;
  mutable std::vector<uint32_t> windows_order_;
};

}  // namespace muonlab::data
