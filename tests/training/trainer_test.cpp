// End to end: a tiny model trained on the committed text learns more than
// letter frequencies: its validation loss ends well below the entropy of the
// training bytes' unigram distribution (the best loss without context).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "data/data_test_util.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/data/byte_tokenizer.h"
#include "muonlab/data/prepare_shards.h"
#include "muonlab/data/token_shard.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/training/trainer.h"
#include "test_util.h"

namespace muonlab::training {
namespace {

// Byte-level shards of the three excerpts, cut into 12 documents.
data::PrepareSummary prepare_byte_shards(const testing::ScratchDir& dir) {
  int index = 0;
  for (const char* name : {"moby-dick.txt", "sotu.txt", "brown.txt"}) {
    std::string text = testing::read_bytes(testing::test_data(std::string("text/") + name));
    for (size_t at = 0; at < text.size() && index < 12; at += 750) {
      testing::write_bytes(dir.file(fmt::format("text/{:02d}.txt", index++)), text.substr(at, 750));
    }
  }
  data::PrepareOptions options;
  options.inputs = {dir.file("text")};
  options.out_dir = dir.file("shards");
  options.name = "t";
  options.val_fraction = 0.2;
  options.threads = 1;
  return data::prepare_shards(data::ByteTokenizer(), options);
}

double unigram_entropy_nats(const std::vector<std::string>& shards) {
  std::map<uint16_t, double> counts;
  double total = 0;
  for (const auto& path : shards) {
    data::TokenShard shard(path);
    for (uint64_t i = 0; i < shard.size(); ++i, ++total) counts[shard[i]] += 1;
  }
  double entropy = 0;
  for (const auto& [token, count] : counts) entropy -= count / total * std::log(count / total);
  return entropy;
}

TrainConfig tiny_run(const testing::ScratchDir& dir) {
  return parse_train_config(fmt::format(R"(
[model]
preset = "tiny-gpt2"
vocab_size = 257
block_size = 64
[data]
train = "{0}/shards/t_train_*.bin"
val = "{0}/shards/t_val_*.bin"
tokenizer = "byte"
batch_size = 8
[optimizer]
name = "muon"
lr = 0.02
adamw_lr = 0.003
[schedule]
warmup_steps = 10
[run]
steps = 150
eval_every = 50
eval_tokens = 4096
out_dir = "{0}/run"
)",
                                        dir.path()),
                            "tiny.toml");
}

TEST(Trainer, ValidationLossFallsWellBelowUnigramEntropy) {
  testing::ScratchDir dir;
  data::PrepareSummary shards = prepare_byte_shards(dir);
  const double unigram = unigram_entropy_nats(shards.train.shards);
  TrainConfig config = tiny_run(dir);
  std::vector<double> val_losses;
  TrainCallbacks callbacks;
  callbacks.on_eval = [&](const EvalReport& report) { val_losses.push_back(report.val_loss); };
  TrainResult result = train(config, callbacks);

  EXPECT_EQ(result.steps, 150);
  ASSERT_EQ(val_losses.size(), 3u);  // steps 50, 100, 150
  EXPECT_LT(result.final_val_loss, unigram - 0.3) << "unigram entropy " << unigram;
  EXPECT_LT(val_losses.back(), val_losses.front());

  // Metrics: one record per step and per evaluation; weights readable back.
  std::ifstream metrics(result.metrics_path);
  int steps = 0, evals = 0;
  for (std::string line; std::getline(metrics, line);) {
    auto record = nlohmann::json::parse(line);
    steps += record.contains("loss");
    evals += record.contains("val_loss");
  }
  EXPECT_EQ(steps, 150);
  EXPECT_EQ(evals, 3);
  auto weights = load_safetensors(result.weights_path);
  EXPECT_FALSE(weights.tensors.empty());
  TrainConfig resolved = load_train_config(dir.file("run/config.toml"));
  EXPECT_EQ(format_train_config(resolved), format_train_config(config));
}

TEST(Trainer, SameSeedSameLossesBitForBit) {
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.run.steps = 12;
  config.run.eval_every = 0;
  std::vector<double> first, second;
  TrainCallbacks record_first, record_second;
  record_first.on_step = [&](const StepReport& report) { first.push_back(report.loss); };
  record_second.on_step = [&](const StepReport& report) { second.push_back(report.loss); };
  train(config, record_first);
  train(config, record_second);
  EXPECT_EQ(first, second);  // exact: same seed, same data order, one thread
}

// A checkpoint write killed midway leaves a ".tmp" folder (or one without
// state.json, written last); resume skips it and loads the previous one.
TEST(Trainer, HalfWrittenCheckpointIsIgnoredAndMismatchRefused) {
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.run.steps = 6;
  config.run.eval_every = 0;
  config.run.checkpoint_every = 3;
  train(config);
  std::string good = dir.file("run/checkpoints/step_00000006");
  ASSERT_EQ(newest_checkpoint(config.run.out_dir), good);
  testing::write_bytes(dir.file("run/checkpoints/step_00000009.tmp/model.safetensors"), "half");
  testing::write_bytes(dir.file("run/checkpoints/step_00000012/model.safetensors"), "no state.json yet");
  EXPECT_EQ(newest_checkpoint(config.run.out_dir), good);
  config.run.steps = 8;
  EXPECT_EQ(train(config, {}, /*resume=*/true).resumed_from, 6);

  config.model.n_layer = 3;
  EXPECT_CONTAINS(testing::error_message([&] { train(config, {}, true); }), "does not match this config: 'model' was");
}

TEST(Trainer, MissingShardsNamed) {
  testing::ScratchDir dir;
  TrainConfig config = tiny_run(dir);
  EXPECT_CONTAINS(testing::error_message([&] { train(config); }), "no shard files match '" + dir.path() + "/shards/t_train_*.bin'");
}

}  // namespace
}  // namespace muonlab::training
