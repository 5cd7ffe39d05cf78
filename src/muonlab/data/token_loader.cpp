#include "muonlab/data/token_loader.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>

#include "muonlab/core/errors.h"
#include "muonlab/core/queued_copy.h"
#include "muonlab/data/shuffle.h"

namespace muonlab::data {
namespace fs = std::filesystem;

// Where shards come from, for a user whose data paths find none.
constexpr const char* kMakeShardsHint =
    "; make shards from text with `muonlab data prepare TEXT --out FOLDER` (docs/usage.md) and point data.train "
    "and data.val at them";

Batch to_device(const Batch& batch, const torch::Device& device) {
  return {queued_copy_to(batch.inputs, device), queued_copy_to(batch.targets, device)};
}

std::vector<std::string> find_shards(const std::string& spec) {
  std::vector<std::string> paths;
  if (fs::is_directory(spec)) {
    for (const auto& entry : fs::directory_iterator(spec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".bin") paths.push_back(entry.path().string());
    }
    if (paths.empty()) fail("folder '{}' holds no .bin shards (empty split){}", spec, kMakeShardsHint);
  } else {
    glob_t matches{};
    int result = ::glob(spec.c_str(), 0, nullptr, &matches);
    for (size_t i = 0; result == 0 && i < matches.gl_pathc; ++i) paths.emplace_back(matches.gl_pathv[i]);
    ::globfree(&matches);
    if (paths.empty()) {
      // A config's relative paths are read from where muonlab runs (the
      // bundled configs' from the repository's root), not from the config's
      // folder: say where that was.
      const std::string where = fs::path(spec).is_relative()
                                    ? fmt::format(" in {} (relative paths are read from the current directory)",
                                                  fs::current_path().string())
                                    : "";
      fail("no shard files match '{}'{} (empty split){}", spec, where, kMakeShardsHint);
    }
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

namespace {

void check_options(const LoaderOptions& options) {
  if (options.batch_size < 1) fail("loader batch size must be at least 1, got {}", options.batch_size);
  if (options.seq_len < 1) fail("loader sequence length must be at least 1, got {}", options.seq_len);
  if (options.world_size < 1) fail("loader world size must be at least 1, got {}", options.world_size);
  if (options.rank < 0 || options.rank >= options.world_size) {
    fail("loader rank {} is outside [0, {}) for world size {}", options.rank, options.world_size,
         options.world_size);
  }
}

}  // namespace

TokenLoader::TokenLoader(const std::vector<std::string>& shard_paths, LoaderOptions options)
    : options_(options) {
  check_options(options_);
  if (shard_paths.empty()) fail("the loader was given no shards (empty split)");
  const auto window_tokens = static_cast<uint64_t>(options_.seq_len) + 1;
  window_offsets_.push_back(0);
  for (const auto& path : shard_paths) {
    TokenShard& shard = shards_.emplace_back(path);
    if (shard.size() < window_tokens) {
      fail("shard '{}' has {} tokens, fewer than one window of sequence length + 1 = {}", path, shard.size(),
           window_tokens);
    }
    // Every token now (a pass at memory speed), so a bad shard fails the
    // run at its start, not at the first batch or evaluation that reads it.
    if (options_.vocab_size > 0) check_vocabulary(shard, 0, shard.size());
    window_offsets_.push_back(window_offsets_.back() + (shard.size() - 1) / options_.seq_len);
  }
  const uint64_t global_batch = static_cast<uint64_t>(options_.world_size) * options_.batch_size;
  batches_per_epoch_ = total_windows() / global_batch;
  if (batches_per_epoch_ == 0) {
    fail("{} shard(s) starting with '{}' hold {} windows of {} tokens, fewer than one global batch of {} "
         "(world size {} x batch size {})",
         shards_.size(), shard_paths.front(), total_windows(), window_tokens, global_batch,
         options_.world_size, options_.batch_size);
  }
}

uint64_t TokenLoader::total_tokens() const {
  uint64_t total = 0;
  for (const auto& shard : shards_) total += shard.size();
  return total;
}

void TokenLoader::restore(const LoaderCursor& cursor) {
  if (cursor.batch >= batches_per_epoch_) {
    fail("loader cursor batch {} is beyond this data's {} batches per epoch: the data, batch size, sequence "
         "length or world size differ from the run that saved it",
         cursor.batch, batches_per_epoch_);
  }
  cursor_ = cursor;
}

const std::vector<uint32_t>& TokenLoader::window_order(uint64_t epoch, size_t shard) const {
  if (windows_shard_ != shard) {
    auto windows = static_cast<uint32_t>(window_offsets_[shard + 1] - window_offsets_[shard]);
    windows_order_ = seeded_permutation(windows, mix_seed(options_.seed, epoch, shard + 1));
    windows_shard_ = shard;
  }
  return windows_order_;
}

std::pair<size_t, uint64_t> TokenLoader::stream_window(uint64_t epoch, uint64_t position) const {
  const auto seq_len = static_cast<uint64_t>(options_.seq_len);
  if (!options_.shuffle) {
    size_t shard = std::upper_bound(window_offsets_.begin(), window_offsets_.end(), position) -
                   window_offsets_.begin() - 1;
    return {shard, (position - window_offsets_[shard]) * seq_len};
  }
  if (order_epoch_ != epoch) {
    shard_order_ = seeded_permutation(static_cast<uint32_t>(shards_.size()), mix_seed(options_.seed, epoch));
    shuffled_offsets_.assign(1, 0);
    for (uint32_t shard : shard_order_) {
      shuffled_offsets_.push_back(shuffled_offsets_.back() + window_offsets_[shard + 1] - window_offsets_[shard]);
    }
    order_epoch_ = epoch;
    windows_shard_ = SIZE_MAX;
  }
  size_t slot = std::upper_bound(shuffled_offsets_.begin(), shuffled_offsets_.end(), position) -
                shuffled_offsets_.begin() - 1;
  size_t shard = shard_order_[slot];
  uint64_t window = window_order(epoch, shard)[position - shuffled_offsets_[slot]];
  return {shard, window * seq_len};
}

std::pair<size_t, uint64_t> TokenLoader::window_location(const LoaderCursor& cursor, int64_t index) const {
  const uint64_t per_rank = options_.batch_size;
  uint64_t position = cursor.batch * options_.world_size * per_rank + options_.rank * per_rank + index;
  return stream_window(cursor.epoch, position);
}

void TokenLoader::check_vocabulary(const TokenShard& shard, uint64_t first, uint64_t count) const {
  for (uint64_t i = first; i < first + count; ++i) {
    if (shard[i] >= options_.vocab_size) {
      fail("shard '{}': token {} at position {} is outside the vocabulary (vocab size {}): the model's "
           "vocab_size must cover the ids of the tokenizer the shards were prepared with (byte: 257, gpt2: 50257)",
           shard.path(), shard[i], i, options_.vocab_size);
    }
  }
}

Batch TokenLoader::next() {
  const int64_t rows = options_.batch_size, window_tokens = options_.seq_len + 1;
  torch::Tensor windows = torch::empty({rows, window_tokens}, torch::kInt64);
  int64_t* out = windows.data_ptr<int64_t>();
  for (int64_t row = 0; row < rows; ++row) {
    auto [shard_index, first] = window_location(cursor_, row);
    const TokenShard& shard = shards_[shard_index];
    for (int64_t i = 0; i < window_tokens; ++i) out[row * window_tokens + i] = shard[first + i];
  }
  if (++cursor_.batch == batches_per_epoch_) cursor_ = {cursor_.epoch + 1, 0};
  using torch::indexing::Slice;
  return {windows.index({Slice(), Slice(0, -1)}).contiguous(), windows.index({Slice(), Slice(1, torch::indexing::None)}).contiguous()};
}

}  // namespace muonlab::data
