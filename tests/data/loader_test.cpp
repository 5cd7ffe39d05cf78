// The loader against windows computed directly from the shard contents:
// order, epochs, shuffling, resume and rank sharding.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "data/data_test_util.h"
#include "muonlab/data/shard_writer.h"
#include "muonlab/data/token_loader.h"
#include "test_util.h"

namespace muonlab::data {
namespace {

// Shards whose token at position i of shard s is s * 1000 + i, so every
// window names where it came from.
class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int shard = 0; shard < 3; ++shard) {
      TokenIds tokens;
      for (int i = 0; i < sizes[shard]; ++i) tokens.push_back(shard * 1000 + i);
      paths.push_back(dir.file("part_" + std::to_string(shard) + ".bin"));
      write_shard(paths.back(), tokens);
    }
  }

  LoaderOptions options(int64_t batch, int64_t seq_len) const { return testing::loader_options(batch, seq_len); }

  // (shard, first token) of each row of a batch, read back from its values.
  static std::vector<std::pair<int64_t, int64_t>> window_starts(const Batch& batch) {
    std::vector<std::pair<int64_t, int64_t>> starts;
    for (int64_t row = 0; row < batch.inputs.size(0); ++row) {
      int64_t first = batch.inputs[row][0].item<int64_t>();
      starts.emplace_back(first / 1000, first % 1000);
    }
    return starts;
  }

  testing::ScratchDir dir;
  const int sizes[3] = {41, 25, 57};  // with T = 8: 5, 3 and 7 windows
  std::vector<std::string> paths;
};

TEST_F(LoaderTest, SequentialWindowsAreConsecutiveAndShifted) {
  TokenLoader loader(paths, options(/*batch=*/2, /*seq_len=*/8));
  EXPECT_EQ(loader.total_windows(), 15u);
  EXPECT_EQ(loader.batches_per_epoch(), 7u);
  std::vector<std::pair<int64_t, int64_t>> expected = {{0, 0}, {0, 8}, {0, 16}, {0, 24}, {0, 32}, {1, 0}, {1, 8},
                                                        {1, 16}, {2, 0}, {2, 8}, {2, 16}, {2, 24}, {2, 32}, {2, 40}};
  std::vector<std::pair<int64_t, int64_t>> seen;
  for (int b = 0; b < 7; ++b) {
    Batch batch = loader.next();
    ASSERT_EQ(batch.inputs.sizes(), (std::vector<int64_t>{2, 8}));
    EXPECT_EQ(batch.inputs.dtype(), torch::kInt64);
    EXPECT_TRUE(torch::equal(batch.targets.narrow(1, 0, 7), batch.inputs.narrow(1, 1, 7)));
    EXPECT_TRUE(torch::equal(batch.targets - batch.inputs, torch::ones({2, 8}, torch::kInt64)));
    for (auto start : window_starts(batch)) seen.push_back(start);
  }
  EXPECT_EQ(seen, expected);  // the 15th window is the epoch's partial batch
  EXPECT_EQ(loader.cursor(), (LoaderCursor{1, 0}));
  EXPECT_EQ(window_starts(loader.next()).front(), (std::pair<int64_t, int64_t>{0, 0}));
}

TEST_F(LoaderTest, ShuffledEpochVisitsEveryWindowOnce) {
  LoaderOptions shuffled = options(/*batch=*/1, /*seq_len=*/8);
  shuffled.shuffle = true;
  shuffled.seed = 42;
  TokenLoader loader(paths, shuffled);
  std::vector<std::vector<std::pair<int64_t, int64_t>>> epochs(2);
  for (auto& epoch : epochs) {
    for (uint64_t b = 0; b < loader.batches_per_epoch(); ++b) epoch.push_back(window_starts(loader.next()).front());
    std::set<std::pair<int64_t, int64_t>> distinct(epoch.begin(), epoch.end());
    EXPECT_EQ(distinct.size(), 15u);
    for (auto [shard, first] : distinct) EXPECT_EQ(first % 8, 0);
  }
  EXPECT_NE(epochs[0], epochs[1]);  // re-drawn each epoch

  shuffled.seed = 43;
  TokenLoader other(paths, shuffled);
  std::vector<std::pair<int64_t, int64_t>> other_epoch;
  for (uint64_t b = 0; b < other.batches_per_epoch(); ++b) other_epoch.push_back(window_starts(other.next()).front());
  EXPECT_NE(other_epoch, epochs[0]);
}

TEST_F(LoaderTest, ResumeFromCursorContinuesWithTheSameBatches) {
  for (bool shuffle : {false, true}) {
    LoaderOptions opts = options(/*batch=*/2, /*seq_len=*/8);
    opts.shuffle = shuffle;
    opts.seed = 7;
    TokenLoader uninterrupted(paths, opts);
    std::vector<Batch> expected;
    for (int b = 0; b < 20; ++b) expected.push_back(uninterrupted.next());  // crosses two epoch ends

    TokenLoader first_run(paths, opts);
    for (int b = 0; b < 9; ++b) first_run.next();
    LoaderCursor saved = first_run.cursor();
    EXPECT_EQ(saved, (LoaderCursor{1, 2}));

    TokenLoader resumed(paths, opts);
    resumed.restore(saved);
    for (int b = 9; b < 20; ++b) {
      Batch batch = resumed.next();
      EXPECT_TRUE(torch::equal(batch.inputs, expected[b].inputs)) << "shuffle " << shuffle << " batch " << b;
      EXPECT_TRUE(torch::equal(batch.targets, expected[b].targets));
    }
  }
}

TEST_F(LoaderTest, RestoreRejectsCursorBeyondEpoch) {
  TokenLoader loader(paths, options(/*batch=*/2, /*seq_len=*/8));
  EXPECT_CONTAINS(testing::error_message([&] { loader.restore({0, 7}); }),
                  "cursor batch 7 is beyond this data's 7 batches per epoch");
}

TEST_F(LoaderTest, RankShardsAreDisjointAndCoverTheData) {
  for (bool shuffle : {false, true}) {
    const int world = 3;
    std::map<std::pair<int64_t, int64_t>, int> owner;
    uint64_t batches = 0;
    for (int rank = 0; rank < world; ++rank) {
      LoaderOptions opts = options(/*batch=*/1, /*seq_len=*/8);
      opts.shuffle = shuffle;
      opts.seed = 3;
      opts.rank = rank;
      opts.world_size = world;
      TokenLoader loader(paths, opts);
      batches = loader.batches_per_epoch();
      for (uint64_t b = 0; b < batches; ++b) {
        for (auto start : window_starts(loader.next())) {
          auto [it, inserted] = owner.emplace(start, rank);
          EXPECT_TRUE(inserted) << "window (" << start.first << ", " << start.second << ") seen by ranks "
                                << it->second << " and " << rank;
        }
      }
    }
    EXPECT_EQ(batches, 5u);
    EXPECT_EQ(owner.size(), 15u);  // 15 windows, 3 ranks x 5 batches x 1: every window, once
  }
}

TEST_F(LoaderTest, RejectsBadOptions) {
  LoaderOptions bad_rank = options(1, 8);
  bad_rank.rank = 2;
  bad_rank.world_size = 2;
  EXPECT_CONTAINS(testing::error_message([&] { TokenLoader(paths, bad_rank); }), "rank 2 is outside [0, 2)");
  EXPECT_CONTAINS(testing::error_message([&] { TokenLoader(paths, options(0, 8)); }), "batch size must be at least 1");
}

TEST_F(LoaderTest, FindsShardsByFolderAndGlob) {
  EXPECT_EQ(find_shards(dir.path()), paths);
  EXPECT_EQ(find_shards(dir.file("part_*.bin")), paths);
  EXPECT_EQ(find_shards(paths[1]), std::vector<std::string>{paths[1]});
}

}  // namespace
}  // namespace muonlab::data
