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
#include "muonlab/training/multiple_choice_eval.h"
#include "muonlab/training/run_folder.h"
#include "muonlab/models/model_stats.h"
#include "muonlab/training/trainer.h"
#include "test_util.h"

#include <sys/resource.h>

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

// The loss of every step of a run of `config`.
std::vector<double> step_losses(const TrainConfig& config) {
  std::vector<double> losses;
  TrainCallbacks record;
  record.on_step = [&](const StepReport& report) { losses.push_back(report.loss); };
  train(config, record);
  return losses;
}

// run.hellaswag: the items are scored at every evaluation, and the last
// figures are what scoring the run's final weights alone gives.
TEST(Trainer, HellaSwagItemsAreScoredAtEachEvaluation) {
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  testing::write_bytes(dir.file("items.jsonl"),
                       R"({"ctx": "Call me", "endings": ["Ishmael.", "the whale.", "qzx"], "label": 0})" "\n"
                       R"({"ctx": "The state of the", "endings": ["Union is strong.", "art."], "label": 0})" "\n"
                       R"({"ctx": "never scored", "endings": ["a", "b"], "label": 1})" "\n");
  TrainConfig config = tiny_run(dir);
  config.run.steps = 4;
  config.schedule.warmup_steps = 1;
  config.run.eval_every = 2;
  config.run.dtype = "fp32";
  config.run.hellaswag = dir.file("items.jsonl");
  config.run.hellaswag_items = 2;
  std::vector<EvalReport> reports;
  TrainCallbacks callbacks;
  callbacks.on_eval = [&](const EvalReport& report) { reports.push_back(report); };
  const TrainResult result = train(config, callbacks);
  ASSERT_EQ(reports.size(), 2u);  // steps 2 and 4
  for (const auto& report : reports) {
    EXPECT_TRUE(report.val_loss.has_value());
    EXPECT_EQ(report.hellaswag_items, 2);
  }
  auto model = load_run_model(result.weights_path);
  const auto items = read_multiple_choice_items(config.run.hellaswag, 2);
  ASSERT_EQ(items.size(), 2u);
  const auto alone = evaluate_multiple_choice(model, data::ByteTokenizer(), items, torch::kCPU, {});
  EXPECT_EQ(reports.back().hellaswag_acc_norm.value(), alone.accuracy_norm());
  EXPECT_EQ(reports.back().hellaswag_acc.value(), alone.accuracy());

  std::ifstream metrics(result.metrics_path);
  int scored = 0;
  for (std::string line; std::getline(metrics, line);) {
    const auto record = nlohmann::json::parse(line);
    if (!record.contains("hellaswag_acc_norm")) continue;
    ++scored;
    EXPECT_EQ(record["hellaswag_items"], 2);
    EXPECT_TRUE(record.contains("val_loss"));
  }
  EXPECT_EQ(scored, 2);

  config.run.hellaswag = dir.file("missing.jsonl");
  config.run.out_dir = dir.file("run2");
  EXPECT_CONTAINS(testing::error_message([&] { train(config, {}); }), "missing.jsonl");
  config.run.hellaswag = dir.file("items.jsonl");
  config.data.tokenizer = "gpt2";
  EXPECT_CONTAINS(testing::error_message([&] { train(config, {}); }),
                  "run.hellaswag: data.tokenizer 'gpt2' has 50257 ids, more than the model's vocab_size 257");
}

TEST(Trainer, ValidationLossFallsWellBelowUnigramEntropy) {
  testing::ScratchDir dir;
  data::PrepareSummary shards = prepare_byte_shards(dir);
  const double unigram = unigram_entropy_nats(shards.train.shards);
  TrainConfig config = tiny_run(dir);
  std::vector<double> val_losses;
  TrainCallbacks callbacks;
  callbacks.on_eval = [&](const EvalReport& report) { val_losses.push_back(report.val_loss.value()); };
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
  const std::vector<double> first = step_losses(config);
  TrainConfig again = config;  // its own folder: a fresh run refuses one that holds a run
  again.run.out_dir = dir.file("run-again");
  EXPECT_EQ(first, step_losses(again));  // exact: same seed, same data order, one thread
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

  // A checkpoint written before a model field existed lacks its line, and
  // resumes while the field keeps its default; a value that differs fails.
  config.model.n_layer = 2;
  const std::string state = dir.file("run/checkpoints/step_00000008/state.json");
  auto json = nlohmann::json::parse(testing::read_bytes(state));
  const std::string model = json["identity"]["model"];
  const std::string line = "logit_softcap=0\n";
  ASSERT_NE(model.find(line), std::string::npos) << model;
  json["identity"]["model"] = std::string(model).erase(model.find(line), line.size());
  testing::write_bytes(state, json.dump());
  config.run.steps = 9;
  EXPECT_EQ(train(config, {}, /*resume=*/true).resumed_from, 8);
  const std::string newer = dir.file("run/checkpoints/step_00000009/state.json");
  json = nlohmann::json::parse(testing::read_bytes(newer));
  std::string capped = json["identity"]["model"];
  json["identity"]["model"] = capped.replace(capped.find(line), line.size(), "logit_softcap=5\n");
  testing::write_bytes(newer, json.dump());
  config.run.steps = 10;
  EXPECT_CONTAINS(testing::error_message([&] { train(config, {}, true); }), "'model' was");
}

// The results depend on the CPU thread count (kernels add in its order), so
// a checkpoint records it, and a resume with another count says so and how
// to continue bit for bit.
TEST(Trainer, ResumeWithAnotherThreadCountSaysSo) {
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.run.steps = 2;
  config.run.eval_every = 0;
  config.run.checkpoint_every = 1;
  const int threads = at::get_num_threads();
  train(config);
  const auto state = read_checkpoint_state(dir.file("run/checkpoints/step_00000002"));
  ASSERT_TRUE(state.intra_op_threads.has_value());
  EXPECT_EQ(*state.intra_op_threads, threads);

  std::vector<std::string> notes;
  TrainCallbacks callbacks;
  callbacks.on_note = [&](const std::string& note) { notes.push_back(note); };
  config.run.steps = 3;
  train(config, callbacks, /*resume=*/true);
  EXPECT_TRUE(notes.empty()) << notes.front();

  at::set_num_threads(threads + 1);
  config.run.steps = 4;
  train(config, callbacks, /*resume=*/true);
  at::set_num_threads(threads);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_CONTAINS(notes.front(), fmt::format("the checkpoint at step 3 was trained with {} CPU threads and this run "
                                             "has {}",
                                             threads, threads + 1));
  EXPECT_CONTAINS(notes.front(), fmt::format("OMP_NUM_THREADS={} continues it bit for bit", threads));
  EXPECT_EQ(thread_count_change_note(std::nullopt, 2, 5), "");  // a checkpoint from before the record
}

// Step records carry MFU (given a peak) and, on diagnostic steps, each
// group's update RMS; metrics.csv mirrors the JSONL with columns in the order
// the trainer writes them.
TEST(Trainer, MetricsCarryMfuUpdateRmsAndCsv) {
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.run.steps = 6;
  config.run.eval_every = 0;
  config.run.diagnostics_every = 3;
  config.run.peak_tflops = 0.5;
  TrainResult result = train(config);

  const double flops_per_token = models::model_stats(config.model).training_flops_per_token(config.data.seq_len);
  std::ifstream metrics(result.metrics_path);
  int diagnosed = 0;
  for (std::string line; std::getline(metrics, line);) {
    auto record = nlohmann::json::parse(line);
    if (!record.contains("loss")) continue;
    const double tokens_per_second = record["tokens"].get<double>() / record["elapsed_s"].get<double>();
    EXPECT_NEAR(record["mfu"].get<double>(), tokens_per_second * flops_per_token / 0.5e12,
                1e-9 * record["mfu"].get<double>());
    const bool diagnostic = record["step"].get<int>() % 3 == 0;
    EXPECT_EQ(record.contains("update_rms_muon"), diagnostic);
    EXPECT_EQ(record.contains("update_rms_adamw"), diagnostic);
    if (diagnostic) {
      ++diagnosed;
      EXPECT_GT(record["update_rms_muon"].get<double>(), 0);
      EXPECT_GT(record["update_rms_adamw"].get<double>(), 0);
    }
  }
  EXPECT_EQ(diagnosed, 2);
  std::ifstream csv(dir.file("run/metrics.csv"));
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header.rfind("step,loss,lr_multiplier,grad_norm,tokens,elapsed_s,lr_muon,lr_adamw,mfu", 0), 0u) << header;
}

// The update RMS the optimizer reports is the RMS of the change of the
// weights Muon trains (read from the hybrid's routing, not its groups).
// Every run.one_step_every steps, each attention weight's one-step gain and
// norm cost (plain Muon: head-wise blocks). tiny-gpt2's fused c_attn is
// 96 x 32 with 4 heads of 8: twelve 8 x 32 blocks of rank 8 against a rank
// 32 gradient, exact cost 96 - 32 = 64; c_proj's four 32 x 8 column blocks
// have ranks adding up to 32, cost 0. With g = 4 (all heads) c_attn is cut
// into Q, K and V (32 x 32 each: cost 96 - 32 again) and c_proj stays whole,
// so it is not measured.
TEST(Trainer, LogsOneStepGainAndCostOfAttentionWeights) {
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.run.steps = 4;
  config.run.eval_every = 0;
  config.run.one_step_every = 2;
  config.run.one_step_group_sizes = {1, 4};
  TrainResult result = train(config);
  std::ifstream metrics(result.metrics_path);
  int measured = 0;
  for (std::string line; std::getline(metrics, line);) {
    auto record = nlohmann::json::parse(line);
    if (!record.contains("loss")) continue;
    const bool due = record["step"].get<int>() % 2 == 0;
    EXPECT_EQ(record.contains("onestep_g1_cost_exact"), due) << line;
    if (!due) continue;
    ++measured;
    for (int layer = 0; layer < config.model.n_layer; ++layer) {
      const std::string qkv = fmt::format("h.{}.attn.c_attn.weight", layer);
      const std::string out = fmt::format("h.{}.attn.c_proj.weight", layer);
      EXPECT_NEAR(record["onestep_g1_cost_exact." + qkv].get<double>(), 64.0, 1e-6) << qkv;
      EXPECT_NEAR(record["onestep_g1_cost_exact." + out].get<double>(), 0.0, 1e-6) << out;
      EXPECT_GT(record["onestep_g1_gain_exact." + qkv].get<double>(), 0.0);
      EXPECT_GE(record["onestep_g1_gain_exact." + out].get<double>(), -1e-9);
      EXPECT_TRUE(record.contains("onestep_g1_gain_ns." + qkv));
      EXPECT_TRUE(record.contains("onestep_g1_cost_ns." + out));
    }
    EXPECT_NEAR(record["onestep_g1_cost_exact"].get<double>(), 64.0 * config.model.n_layer, 1e-6);
    EXPECT_NEAR(record["onestep_g4_cost_exact.h.0.attn.c_attn.weight"].get<double>(), 64.0, 1e-6);
    EXPECT_FALSE(record.contains("onestep_g4_cost_exact.h.0.attn.c_proj.weight"));
  }
  EXPECT_EQ(measured, 2);
}

TEST(TrainOptimizer, UpdateRmsIsTheRmsOfEachPartsWeightChange) {
  torch::manual_seed(3);
  const models::ModelConfig model_config = models::model_preset("tiny-gpt2");
  models::Transformer model(model_config);
  TrainOptimizer optimizer(model, OptimizerSettings{});
  auto tokens = torch::randint(0, model_config.vocab_size, {2, 16}, torch::kLong);
  models::training_loss(model->forward(tokens), tokens).backward();
  std::map<std::string, torch::Tensor> before;
  for (const auto& item : model->named_parameters()) before[item.key()] = item.value().detach().clone();
  optimizer.step(/*measure_updates=*/true);

  optim::MuonWithAuxAdamW routed(model->tagged_parameters(), optim::MuonOptions(0.02), optim::AdamWOptions(1e-3));
  std::map<std::string, std::pair<double, double>> squares_and_count;  // by part
  auto params = model->named_parameters();
  for (const auto& route : routed.routing()) {
    const std::string part = route.optimizer == optim::OptimizerChoice::kMuon ? "muon" : "adamw";
    torch::Tensor change = params[route.name].detach().to(torch::kFloat64) - before[route.name].to(torch::kFloat64);
    squares_and_count[part].first += change.square().sum().item<double>();
    squares_and_count[part].second += static_cast<double>(change.numel());
  }
  ASSERT_EQ(optimizer.last_update_rms().size(), 2u);
  for (const auto& [part, rms] : optimizer.last_update_rms()) {
    const auto& [squares, count] = squares_and_count.at(part);
    EXPECT_NEAR(rms, std::sqrt(squares / count), 1e-12) << part;
  }
}

// [schedule.adamw] gives the hybrid's AdamW part its own warmup.
TEST(Trainer, AdamWPartFollowsItsOwnSchedule) {
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.run.steps = 6;
  config.run.eval_every = 0;
  config.schedule.kind = ScheduleKind::kConstant;
  config.schedule.warmup_steps = 0;
  config.adamw_schedule_changes.warmup_steps = 4;
  TrainResult result = train(config);
  std::ifstream metrics(result.metrics_path);
  std::vector<double> muon_lrs, adamw_lrs;
  for (std::string line; std::getline(metrics, line);) {
    auto record = nlohmann::json::parse(line);
    if (!record.contains("loss")) continue;  // the final evaluation
    muon_lrs.push_back(record["lr_muon"].get<double>());
    adamw_lrs.push_back(record["lr_adamw"].get<double>());
  }
  const double adamw_lr = config.optimizer.adamw_lr;
  EXPECT_EQ(muon_lrs, std::vector<double>(6, config.optimizer.lr));
  const std::vector<double> expected = {adamw_lr / 4, adamw_lr * 2 / 4, adamw_lr * 3 / 4, adamw_lr, adamw_lr, adamw_lr};
  ASSERT_EQ(adamw_lrs.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_DOUBLE_EQ(adamw_lrs[i], expected[i]) << "step " << i + 1;
}

// A checkpoint restores the random generators: what torch::rand draws after
// loading equals what it drew after saving.
TEST(Checkpoint, RestoresTheRandomGenerator) {
  testing::ScratchDir dir;
  TrainConfig config = tiny_run(dir);
  models::Transformer model(config.model);
  TrainOptimizer optimizer(model, config.optimizer);
  torch::manual_seed(5);
  torch::rand({3});
  const std::string folder = save_checkpoint(config, {7, {0, 0}}, model, optimizer);
  const torch::Tensor after_save = torch::rand({4});
  torch::manual_seed(99);
  EXPECT_EQ(load_checkpoint(folder, config, model, optimizer).step, 7);
  EXPECT_TRUE(torch::equal(torch::rand({4}), after_save));
}

// An AdamW lr of 1e30 blows the weights up, so the loss of a later step is
// not finite: "stop" names that step and the last good checkpoint; "skip"
// leaves the weights as they were before each bad step.
TEST(Trainer, NonFiniteLossStopsNamingStepAndLastCheckpointOrIsSkipped) {
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.optimizer.name = "adamw";
  config.optimizer.lr = 1e30;
  config.run.clip_grad_norm = 0;
  config.run.steps = 6;
  config.run.eval_every = 0;
  config.run.checkpoint_every = 1;
  config.run.keep_checkpoints = 10;
  const std::string message = testing::error_message([&] { train(config); });
  EXPECT_CONTAINS(message, "(non-finite); stopped without updating the weights. Last good checkpoint: " +
                               dir.file("run/checkpoints/step_0000000"));
  EXPECT_CONTAINS(message, "continue from it with --resume");

  config.run.on_nonfinite = optim::NonFinitePolicy::kSkipStep;
  config.run.out_dir = dir.file("skip");
  config.data.val.clear();  // the last step's update may blow the weights up: the next test's case
  TrainResult result = train(config);
  EXPECT_EQ(result.steps, 6);
  std::ifstream metrics(result.metrics_path);
  int skipped = 0;
  for (std::string line; std::getline(metrics, line);) skipped += nlohmann::json::parse(line).value("skipped", false);
  EXPECT_GE(skipped, 1);
  auto final_weights = load_safetensors(result.weights_path);
  auto last_good = load_safetensors(dir.file(fmt::format("skip/checkpoints/step_{:08d}/model.safetensors", 6 - skipped)));
  ASSERT_EQ(final_weights.tensors.size(), last_good.tensors.size());
  for (size_t i = 0; i < final_weights.tensors.size(); ++i) {
    EXPECT_TRUE(torch::equal(final_weights.tensors[i].second, last_good.tensors[i].second))
        << final_weights.tensors[i].first;
  }
  EXPECT_EQ(result.skipped_steps, skipped);

  // A run that skips more than run.max_skipped_steps fails, naming the count.
  config.run.max_skipped_steps = skipped - 1;
  config.run.out_dir = dir.file("too-many-skipped");
  EXPECT_CONTAINS(testing::error_message([&] { train(config); }),
                  fmt::format("and {} steps were skipped, more than run.max_skipped_steps = {}", skipped, skipped - 1));
}

// The one step's forward is finite, its update blows the weights up: the
// final evaluation's loss is not finite, and the run fails instead of
// saving those weights.
TEST(Trainer, NonFiniteValidationLossFailsWithoutSavingWeights) {
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  ASSERT_FALSE(config.data.val.empty());
  config.optimizer.name = "adamw";
  config.optimizer.lr = 1e30;
  config.run.clip_grad_norm = 0;
  config.run.steps = 1;
  config.run.eval_every = 0;
  EXPECT_CONTAINS(testing::error_message([&] { train(config); }),
                  "step 1: the validation loss is NaN (non-finite). Last good checkpoint: none yet");
  EXPECT_FALSE(std::filesystem::exists(dir.file("run/model.safetensors")));
}

// Each evaluation reports its progress batch by batch, ending at all of
// them, before its loss.
TEST(Trainer, EvaluationReportsProgressPerBatch) {
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.run.steps = 4;
  config.run.eval_every = 2;
  config.run.eval_tokens = 2 * config.data.batch_size * config.data.seq_len;  // 2 batches: all the test split has
  std::vector<std::string> events;
  TrainCallbacks callbacks;
  callbacks.on_eval_progress = [&](int64_t step, int64_t done, int64_t batches) {
    events.push_back(fmt::format("{}:{}/{}", step, done, batches));
  };
  callbacks.on_eval = [&](const EvalReport& report) { events.push_back(fmt::format("{}:loss", report.step)); };
  train(config, callbacks);
  EXPECT_EQ(events, (std::vector<std::string>{"2:1/2", "2:2/2", "2:loss", "4:1/2", "4:2/2", "4:loss"}));
}

TEST(Trainer, ConfigTomlRecordsAbsoluteDataPaths) {
  TrainConfig config;
  config.data.train = "data/../data/x_train_*.bin";
  config.data.val = "/abs/y_val_*.bin";
  const TrainConfig recorded = with_absolute_paths(config);
  EXPECT_EQ(recorded.data.train, (std::filesystem::current_path() / "data/x_train_*.bin").string());
  EXPECT_EQ(recorded.data.val, "/abs/y_val_*.bin");
  config.data.val.clear();
  EXPECT_EQ(with_absolute_paths(config).data.val, "");
}

// A micro-batch too large for the memory there is: in a child whose address
// space is capped 1 GiB above what it uses, a wide model's batch of 100
// sequences fails naming the step, the batch and the settings to change.
// In fp32: bf16 autocast (auto's choice on bf16 CPUs) halves the
// activations, and the batch would fit.
TEST(TrainerDeathTest, OutOfMemoryNamesTheBatchAndWhatToChange) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.model.d_model = 1024;  // about 1.6 GB of activations for 100 x 64 tokens
  config.model.n_head = 8;
  config.model.mlp_hidden = 4096;
  config.data.batch_size = 100;
  config.data.val.clear();
  config.run.steps = 1;
  config.run.dtype = "fp32";
  EXPECT_EXIT(
      {
        rlimit limit{};
        std::ifstream status("/proc/self/statm");
        long pages = 0;
        status >> pages;
        limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(pages) * ::getpagesize() + (1L << 30);
        ::setrlimit(RLIMIT_AS, &limit);
        try {
          train(config);
        } catch (const Error& error) {
          std::fprintf(stderr, "%s\n", error.what());
          std::_Exit(3);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(3),
      "step 1: out of memory on cpu with micro-batches of 100 x 64 tokens .* lower data.batch_size and raise "
      "run.grad_accum");
  EXPECT_TRUE(is_out_of_memory("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes"));
  EXPECT_TRUE(is_out_of_memory("CUDA out of memory. Tried to allocate 2.00 GiB"));
  EXPECT_FALSE(is_out_of_memory("shape mismatch"));
}

TEST(Trainer, MissingShardsNamed) {
  testing::ScratchDir dir;
  TrainConfig config = tiny_run(dir);
  EXPECT_CONTAINS(testing::error_message([&] { train(config); }), "no shard files match '" + dir.path() + "/shards/t_train_*.bin'");
}

// On CUDA in fp32 (NS in fp32 too) the run follows the CPU's: same initial
// weights (drawn on the CPU), same batches, so the first loss agrees to
// rounding and the next ones stay close while the two drift apart slowly.
TEST(TrainerOnCuda, Fp32LossesFollowTheCpuRun) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.run.steps = 12;
  config.run.eval_every = 0;
  config.run.dtype = "fp32";
  config.optimizer.ns_dtype = "fp32";
  const std::vector<double> cpu = step_losses(config);
  config.run.device = "cuda";
  config.run.out_dir = dir.file("run-cuda");
  const std::vector<double> gpu = step_losses(config);
  ASSERT_EQ(cpu.size(), gpu.size());
  EXPECT_NEAR(gpu[0], cpu[0], 1e-4 * cpu[0]);
  for (size_t i = 0; i < cpu.size(); ++i) EXPECT_NEAR(gpu[i], cpu[i], 2e-2 * cpu[i]) << "step " << i + 1;
}

// optimizer.cuda_graph replays Muon's first half from a CUDA graph while the
// schedule changes the lr every step: the losses are the eager run's.
TEST(TrainerOnCuda, GraphedMuonStepsGiveTheEagerLosses) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  testing::ScratchDir dir;
  prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.run.device = "cuda";
  config.run.steps = 12;
  config.run.eval_every = 0;
  config.run.dtype = "fp32";
  const std::vector<double> eager = step_losses(config);
  config.optimizer.cuda_graph = true;
  config.run.out_dir = dir.file("run-graphed");
  const std::vector<double> graphed = step_losses(config);
  ASSERT_EQ(eager.size(), graphed.size());
  for (size_t i = 0; i < eager.size(); ++i) EXPECT_NEAR(graphed[i], eager[i], 1e-5 * eager[i]) << "step " << i + 1;
}

// bf16 autocast with NS in bf16 (CUDA's defaults) learns as the CPU run
// does, and MFU is reported against the GPU's peak from the table.
TEST(TrainerOnCuda, Bf16AutocastLearnsBelowUnigramEntropy) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  testing::ScratchDir dir;
  data::PrepareSummary shards = prepare_byte_shards(dir);
  TrainConfig config = tiny_run(dir);
  config.run.device = "cuda";
  config.run.dtype = "bf16";
  TrainResult result = train(config);
  EXPECT_LT(result.final_val_loss, unigram_entropy_nats(shards.train.shards) - 0.3);
  std::ifstream metrics(result.metrics_path);
  for (std::string line; std::getline(metrics, line);) {
    auto record = nlohmann::json::parse(line);
    if (!record.contains("loss")) continue;
    EXPECT_TRUE(std::isfinite(record["loss"].get<double>()));
    if (record.contains("mfu")) EXPECT_GT(record["mfu"].get<double>(), 0.0);
  }
}

}  // namespace
}  // namespace muonlab::training
