// Evaluation without training: each position's loss is what the model
// predicts from that prefix alone, and a split's loss is the mean over its
// windows of the same per-position losses.
#include <gtest/gtest.h>

#include "data/data_test_util.h"
#include "models/model_test_util.h"
#include "muonlab/data/shard_writer.h"
#include "muonlab/training/evaluate_loss.h"
#include "test_util.h"

namespace muonlab::training {
namespace {

using testing::tiny_config;

models::Transformer float64_model(const std::string& preset) {
  torch::manual_seed(17);
  models::Transformer model(tiny_config(preset));
  model->to(torch::kFloat64);
  return model;
}

std::vector<int64_t> random_ids(int64_t count, int64_t vocab, uint64_t seed) {
  torch::manual_seed(seed);
  const auto ids = torch::randint(vocab, {count}, torch::kInt64);
  return {ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + count};
}

// -log p(ids[last + 1] | ids[first..last]) from a forward pass over that span only.
double loss_after_prefix(models::Transformer& model, const std::vector<int64_t>& ids, size_t last,
                         size_t first = 0) {
  torch::NoGradGuard no_grad;
  const auto prefix =
      torch::tensor(std::vector<int64_t>(ids.begin() + first, ids.begin() + last + 1)).unsqueeze(0);
  const auto log_probs = torch::log_softmax(model->forward(prefix).logits[0][-1], -1);
  return -log_probs[ids[last + 1]].item<double>();
}

TEST(EvaluateLoss, EachPositionsLossIsWhatItsPrefixAlonePredicts) {
  for (const auto* preset : {"tiny-gpt2", "tiny-llama", "tiny-mla-moe"}) {
    SCOPED_TRACE(preset);
    auto model = float64_model(preset);
    const auto ids = random_ids(12, model->config().vocab_size, 3);
    const auto losses = per_token_losses(model, ids, torch::kCPU, /*bf16=*/false);
    ASSERT_EQ(losses.size(), ids.size() - 1);
    for (size_t i = 0; i < losses.size(); ++i) {
      EXPECT_NEAR(losses[i], loss_after_prefix(model, ids, i), 1e-10) << "position " << i;
    }
    EXPECT_TRUE(model->is_training()) << "the model stays in eval mode after evaluating";
  }
}

// A sequence longer than the context, in windows whose starts advance by
// `stride`: position i is scored by the first window that reaches it, the
// one starting at 0 for i < block_size, else at the first multiple of the
// stride past i - block_size.
TEST(EvaluateLoss, LongSequencesAreScoredInStridedWindows) {
  auto model = float64_model("tiny-llama");
  const int64_t block_size = model->config().block_size;
  const auto ids = random_ids(2 * block_size + 7, model->config().vocab_size, 5);
  for (const int64_t stride : {int64_t{1}, int64_t{5}, block_size}) {
    SCOPED_TRACE(::testing::Message() << "stride " << stride);
    const auto losses = per_token_losses(model, ids, torch::kCPU, false, stride);
    ASSERT_EQ(losses.size(), ids.size() - 1);
    for (int64_t i = 0; i < static_cast<int64_t>(losses.size()); ++i) {
      const int64_t first = i < block_size ? 0 : ((i - block_size) / stride + 1) * stride;
      ASSERT_LE(i - first + 1, block_size);
      EXPECT_NEAR(losses[i], loss_after_prefix(model, ids, i, first), 1e-10) << "position " << i;
    }
  }
  // A sequence that fits is one window whatever the stride.
  const std::vector<int64_t> short_ids(ids.begin(), ids.begin() + block_size + 1);
  EXPECT_EQ(per_token_losses(model, short_ids, torch::kCPU, false, 3),
            per_token_losses(model, short_ids, torch::kCPU, false));
}

TEST(EvaluateLoss, ASplitsLossIsTheMeanOverItsWindowsOfPerTokenLosses) {
  auto model = float64_model("tiny-llama");
  const int64_t seq_len = 8, batch_size = 2, windows = 6;
  std::vector<int32_t> tokens;
  for (int64_t id : random_ids(windows * seq_len + 1, model->config().vocab_size, 9)) {
    tokens.push_back(static_cast<int32_t>(id));
  }
  testing::ScratchDir scratch;
  data::write_shard(scratch.file("val_000.bin"), tokens);
  data::LoaderOptions options;
  options.batch_size = batch_size;
  options.seq_len = seq_len;
  data::TokenLoader loader({scratch.file("val_000.bin")}, options);
  ASSERT_EQ(loader.batches_per_epoch(), static_cast<uint64_t>(windows / batch_size));

  LossSumOptions sum_options;
  sum_options.batches = windows / batch_size;
  const double split_loss =
      sum_of_batch_losses(model, loader, torch::kCPU, sum_options) / static_cast<double>(sum_options.batches);

  // Window w is tokens [w T, (w + 1) T] (llm.c's layout), one sequence each.
  double sum = 0;
  for (int64_t w = 0; w < windows; ++w) {
    const std::vector<int64_t> window(tokens.begin() + w * seq_len, tokens.begin() + (w + 1) * seq_len + 1);
    for (double loss : per_token_losses(model, window, torch::kCPU, false)) sum += loss;
  }
  EXPECT_NEAR(split_loss, sum / static_cast<double>(windows * seq_len), 1e-10);
}

TEST(EvaluateLoss, ComputesOnlyTheBatchesItIsGiven) {
  auto model = float64_model("tiny-gpt2");
  std::vector<int32_t> tokens;
  for (int64_t id : random_ids(4 * 8 + 1, model->config().vocab_size, 4)) tokens.push_back(static_cast<int32_t>(id));
  testing::ScratchDir scratch;
  data::write_shard(scratch.file("val_000.bin"), tokens);
  data::LoaderOptions options;
  options.batch_size = 1;
  options.seq_len = 8;
  data::TokenLoader loader({scratch.file("val_000.bin")}, options);
  LossSumOptions all;
  all.batches = 4;
  LossSumOptions even = all, odd = all;
  even.computes = [](int64_t index) { return index % 2 == 0; };
  odd.computes = [](int64_t index) { return index % 2 == 1; };
  const double whole = sum_of_batch_losses(model, loader, torch::kCPU, all);
  // Two ranks' halves add up to the whole, whatever the loader's position was.
  loader.next();
  EXPECT_NEAR(sum_of_batch_losses(model, loader, torch::kCPU, even) +
                  sum_of_batch_losses(model, loader, torch::kCPU, odd),
              whole, 1e-10);
}

TEST(EvaluateLoss, BatchCountIsWholeBatchesWithinOneEpoch) {
  EXPECT_EQ(eval_batch_count(1000, 128, 24), 8);  // 7.8 batches: rounded up
  EXPECT_EQ(eval_batch_count(1024, 128, 24), 8);
  EXPECT_EQ(eval_batch_count(1025, 128, 24), 9);
  EXPECT_EQ(eval_batch_count(1, 128, 24), 1);
  EXPECT_EQ(eval_batch_count(0, 128, 24), 1);        // at least one
  EXPECT_EQ(eval_batch_count(1 << 30, 128, 24), 24);  // at most the split
}

TEST(EvaluateLoss, SequencesItCannotScoreFailNamingWhy) {
  auto model = float64_model("tiny-gpt2");
  const int64_t block_size = model->config().block_size;
  EXPECT_CONTAINS(testing::error_message([&] { per_token_losses(model, {5}, torch::kCPU, false); }),
                  "no next token to predict: give at least 2");
  const std::vector<int64_t> too_long(block_size + 2, 1);
  EXPECT_CONTAINS(testing::error_message([&] { per_token_losses(model, too_long, torch::kCPU, false); }),
                  fmt::format("longer than the model's context (block_size {}) + 1: give a stride", block_size));
  EXPECT_CONTAINS(
      testing::error_message([&] { per_token_losses(model, too_long, torch::kCPU, false, block_size + 1); }),
      fmt::format("stride {} is longer than the model's context (block_size {})", block_size + 1, block_size));
  EXPECT_CONTAINS(testing::error_message([&] { per_token_losses(model, {1, 64}, torch::kCPU, false); }),
                  "token id 64 is outside the model's vocabulary [0, 64)");
  const std::vector<int64_t> longest(block_size + 1, 1);
  EXPECT_EQ(per_token_losses(model, longest, torch::kCPU, false).size(), static_cast<size_t>(block_size));
}

}  // namespace
}  // namespace muonlab::training
