// Sweep specs (grid expansion, every error naming the file and key), and the
// SQLite index against the run folders it summarizes.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/data_test_util.h"
#include "muonlab/sweep/sweep_index.h"
#include "muonlab/sweep/sweep_spec.h"
#include "muonlab/training/train_config.h"
#include "test_util.h"

namespace muonlab::sweep {
namespace {

using testing::error_message;

// A base config next to the spec; its data need not exist to expand a grid.
std::string write_spec(const testing::ScratchDir& dir, const std::string& body) {
  testing::write_bytes(dir.file("base.toml"),
                       "[model]\npreset = \"tiny-gpt2\"\n[data]\ntrain = \"shards/t_train_*.bin\"\n[run]\nsteps = 10\n");
  testing::write_bytes(dir.file("spec.toml"), body);
  return dir.file("spec.toml");
}

const char* kSpec = R"([sweep]
name = "demo"
base = "base.toml"
baseline = "adamw"
parallel = 2
set = ["run.steps=8"]

[axes]
"run.seed" = [1, 2]
"data.batch_size" = [4, 8]

[[variant]]
name = "adamw"
set = ["optimizer.name=adamw"]
lr = [0.001, 3e-3]

[[variant]]
name = "muon"
set = ["optimizer.name=muon", "optimizer.ns_steps=3"]
)";

TEST(SweepSpec, ExpandsVariantsLrAndAxesInOrder) {
  testing::ScratchDir dir;
  const SweepSpec spec = load_sweep_spec(write_spec(dir, kSpec));
  EXPECT_EQ(spec.name, "demo");
  EXPECT_EQ(spec.parallel, 2);
  EXPECT_EQ(spec.base, dir.file("base.toml"));
  const auto runs = expand_sweep(spec);
  ASSERT_EQ(runs.size(), 2u * 2 * 2 + 1u * 2 * 2);  // adamw: 2 lr x 4; muon: 4
  // toml++ keeps a table's keys sorted, so the axes come as data.*, run.*.
  EXPECT_EQ(runs[0].id, "adamw/lr=0.001,data.batch_size=4,run.seed=1");
  EXPECT_EQ(runs[1].id, "adamw/lr=0.001,data.batch_size=4,run.seed=2");
  EXPECT_EQ(runs[4].id, "adamw/lr=0.003,data.batch_size=4,run.seed=1");
  EXPECT_EQ(runs[8].id, "muon/data.batch_size=4,run.seed=1");
  EXPECT_EQ(runs[4].overrides,
            (std::vector<std::string>{"run.steps=8", "optimizer.name=adamw", "optimizer.lr=0.003", "data.batch_size=4",
                                      "run.seed=1"}));
  EXPECT_EQ(runs[8].lr, "");
}

// The command line's --set follows [sweep] set in every run, and is checked
// against the base config like the spec's own overrides.
TEST(SweepSpec, ExtraOverridesFollowTheSpecsOwn) {
  testing::ScratchDir dir;
  const std::string path = write_spec(dir, kSpec);
  const auto runs = expand_sweep(load_sweep_spec(path, {"run.device=\"cuda\"", "run.steps=9"}));
  EXPECT_EQ(runs[8].overrides, (std::vector<std::string>{"run.steps=8", "run.device=\"cuda\"", "run.steps=9",
                                                         "optimizer.name=muon", "optimizer.ns_steps=3",
                                                         "data.batch_size=4", "run.seed=1"}));
  EXPECT_CONTAINS(error_message([&] { load_sweep_spec(path, {"run.stepz=9"}); }), "unknown key 'run.stepz'");
}

// kSpec with its first `from` replaced by `to`.
std::string spec_with(const std::string& from, const std::string& to) {
  std::string spec(kSpec);
  const size_t at = spec.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return spec.replace(at, from.size(), to);
}

TEST(SweepSpec, BadSpecsAreNamed) {
  testing::ScratchDir dir;
  const std::string spec(kSpec);
  auto error_of = [&](const std::string& body) { return error_message([&] { load_sweep_spec(write_spec(dir, body)); }); };
  const std::string unknown_axis = spec_with("\"run.seed\"", "\"run.sead\"");
  EXPECT_CONTAINS(error_of(unknown_axis), "run 'adamw/lr=0.001,data.batch_size=4,run.sead=1'");
  EXPECT_CONTAINS(error_of(unknown_axis), "unknown key 'run.sead'");
  EXPECT_CONTAINS(error_of(spec_with("[1, 2]", "[]")), "spec.toml:9: 'run.seed' has no values, so the grid is empty");
  EXPECT_CONTAINS(error_of(spec_with("\"run.steps=8\"", "\"run.steps\"")),
                  "[sweep]: set entries are \"key=value\" strings");
  EXPECT_CONTAINS(error_of(spec_with("baseline = \"adamw\"", "baseline = \"sgd\"")),
                  "baseline 'sgd' is not a variant; the variants are adamw, muon");
  EXPECT_CONTAINS(error_of("[sweep]\nname = \"x\"\nbase = \"base.toml\"\nbaseline = \"a\"\n"), "no [[variant]] tables");
  EXPECT_CONTAINS(error_of(spec + "[extra]\n"), "unknown key 'extra' in the spec");
  EXPECT_CONTAINS(error_of(spec_with("parallel = 2", "parralel = 2")),
                  "unknown key 'parralel' in [sweep] (did you mean 'parallel'?); expected one of base");
  EXPECT_CONTAINS(error_of(spec_with("[[variant]]\nname = \"muon\"", "[[variant]]\nnmae = \"muon\"")),
                  "unknown key 'nmae' in [[variant]] (did you mean 'name'?)");
  const std::string bad_value = spec_with("optimizer.ns_steps=3", "optimizer.ns_steps=x");
  EXPECT_CONTAINS(error_of(bad_value), "run 'muon/data.batch_size=4,run.seed=1'");
  EXPECT_CONTAINS(error_of(bad_value), "'optimizer.ns_steps': expected an integer");
  EXPECT_CONTAINS(error_of(spec + "[[variant]]\nname = \"muon\"\n"), "variant 'muon' appears twice");
  // A repeated value would name two runs alike, training in one folder;
  // 3e-3 and 0.003 are the same value.
  EXPECT_CONTAINS(error_of(spec_with("[1, 2]", "[1, 2, 1]")),
                  "spec.toml:9: 'run.seed' lists 1 twice: each value names a run");
  EXPECT_CONTAINS(error_of(spec_with("[0.001, 3e-3]", "[0.003, 0.001, 3e-3]")), "'adamw.lr' lists 0.003 twice");
  EXPECT_CONTAINS(error_of(spec_with("[sweep]\n", "[sweep]\ntarget_loss = -1.0\n")),
                  "spec.toml:2: [sweep] 'target_loss' = -1: expected a loss > 0");
  EXPECT_CONTAINS(error_of(spec_with("base.toml", "none.toml")), "base '" + dir.file("none.toml") + "' not found");
}

// A linked axis sets its keys together, one point at a time: an equal token
// budget at every batch size is (batch, steps) pairs, not their product.
TEST(SweepSpec, LinkedAxisSetsItsKeysTogether) {
  testing::ScratchDir dir;
  auto with_axis = [](const std::string& axis) { return spec_with("\"data.batch_size\" = [4, 8]", axis); };
  const std::string spec = with_axis("\"data.batch_size, run.steps\" = [[4, 20], [8, 10]]");
  const auto runs = expand_sweep(load_sweep_spec(write_spec(dir, spec)));
  ASSERT_EQ(runs.size(), 2u * 2 * 2 + 1u * 2 * 2);  // 2 points x 2 seeds, as with a plain axis of 2
  EXPECT_EQ(runs[0].id, "adamw/lr=0.001,data.batch_size=4,run.steps=20,run.seed=1");
  EXPECT_EQ(runs[3].id, "adamw/lr=0.001,data.batch_size=8,run.steps=10,run.seed=2");
  EXPECT_EQ(runs[3].overrides, (std::vector<std::string>{"run.steps=8", "optimizer.name=adamw", "optimizer.lr=0.001",
                                                         "data.batch_size=8", "run.steps=10", "run.seed=2"}));
  const training::TrainConfig config = training::load_train_config(dir.file("base.toml"), runs[3].overrides);
  EXPECT_EQ(config.data.batch_size, 8);
  EXPECT_EQ(config.run.steps, 10);

  auto error_of = [&](const std::string& axis) {
    return error_message([&] { load_sweep_spec(write_spec(dir, with_axis(axis))); });
  };
  EXPECT_CONTAINS(error_of("\"data.batch_size, run.steps\" = [[4, 20], [8]]"),
                  "spec.toml:10: 'data.batch_size, run.steps': each point must be an array of 2 values, one per key");
  EXPECT_CONTAINS(error_of("\"data.batch_size, run.steps\" = [4, 8]"), "each point must be an array of 2 values");
  EXPECT_CONTAINS(error_of("\"data.batch_size, run.steps\" = []"), "has no values, so the grid is empty");
  EXPECT_CONTAINS(error_of("\"data.batch_size, run.steps\" = [[4, 20], [8, 10], [4, 20]]"),
                  "'data.batch_size, run.steps' lists [4, 20] twice");
  const std::string sharing_a_value = with_axis("\"data.batch_size, run.steps\" = [[4, 20], [4, 10]]");
  EXPECT_EQ(expand_sweep(load_sweep_spec(write_spec(dir, sharing_a_value))).size(), 12u)
      << "points sharing one value are distinct";
  EXPECT_CONTAINS(error_of("\"data.batch_size,\" = [[4, 20]]"), "an empty key");
  EXPECT_CONTAINS(error_of("\"data.batch_size, run.seed\" = [[4, 1]]"),
                  "axis key 'run.seed' appears in two axes; each key belongs to one");
  EXPECT_CONTAINS(error_of("\"data.batch_size, run.stepz\" = [[4, 20]]"), "unknown key 'run.stepz'");
}

TEST(SweepSpec, EveryBundledStudyLoads) {
  // experiments/*.toml (CPU) and experiments/gpu/*.toml: every run of every
  // grid is a valid config (base-cpu.toml is the CPU studies' train config).
  int loaded = 0;
  for (const std::string folder : {"../../experiments", "../../experiments/gpu"}) {
    for (const auto& entry : std::filesystem::directory_iterator(testing::test_data(folder))) {
      if (entry.path().extension() != ".toml" || entry.path().filename() == "base-cpu.toml") continue;
      SCOPED_TRACE(entry.path().string());
      const SweepSpec spec = load_sweep_spec(entry.path().string());
      // The main job compares one run of each optimizer; studies run grids.
      EXPECT_GE(expand_sweep(spec).size(), entry.path().filename() == "main-comparison.toml" ? 2u : 8u);
      ++loaded;
    }
  }
  // Four studies on CPU and GPU, the CPU headline comparison, the main job,
  // the bf16-vs-fp32 check, MuonClip tuned and at one lr, the architectures,
  // Gram Newton-Schulz against the standard form.
  EXPECT_EQ(loaded, 15);
}

TEST(SweepIndex, RowsMatchTheRunFolders) {
  testing::ScratchDir dir;
  const SweepSpec spec = load_sweep_spec(write_spec(dir, kSpec));
  const auto runs = expand_sweep(spec);
  // One finished run (weights written, an evaluation logged), one cut short
  // by a crash mid-line, one never started.
  testing::write_bytes(dir.file("a/metrics.jsonl"),
                       "{\"step\":1,\"loss\":5.5,\"tokens\":64,\"elapsed_s\":0.5}\n"
                       "{\"step\":2,\"loss\":5.0,\"tokens\":128,\"elapsed_s\":1.0}\n"
                       "{\"step\":2,\"val_loss\":5.25,\"val_tokens\":256,\"tokens\":128}\n");
  testing::write_bytes(dir.file("a/model.safetensors"), "x");
  testing::write_bytes(dir.file("b/metrics.jsonl"), "{\"step\":1,\"loss\":6.0,\"tokens\":64,\"elapsed_s\":0.5}\n{\"st");
  {
    SweepIndex index(dir.file("index.sqlite"));
    index.put(record_of(runs[0], dir.file("a"), "pending", 1));
    index.put(record_of(runs[1], dir.file("b"), "failed", 2));
    index.put(record_of(runs[2], dir.file("c"), "pending", 0));
    index.put(record_of(runs[0], dir.file("a"), "pending", 1));  // again: replaced, not duplicated
  }
  const auto rows = SweepIndex(dir.file("index.sqlite")).all();  // reopened from disk
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].id, runs[0].id);
  EXPECT_EQ(rows[0].status, "done");
  EXPECT_EQ(*rows[0].outcome.final_val_loss, 5.25);
  EXPECT_EQ(*rows[0].outcome.final_train_loss, 5.0);
  EXPECT_EQ(rows[0].outcome.steps, 2);
  EXPECT_EQ(rows[0].outcome.tokens, 128);
  EXPECT_EQ(rows[0].axes_json, "{\"data.batch_size\":\"4\",\"run.seed\":\"1\"}");
  EXPECT_EQ(rows[0].lr, "0.001");
  EXPECT_EQ(rows[1].status, "failed");
  EXPECT_EQ(rows[1].attempts, 2);
  EXPECT_FALSE(rows[1].outcome.final_val_loss.has_value());
  EXPECT_EQ(*rows[1].outcome.final_train_loss, 6.0);
  EXPECT_EQ(rows[2].status, "pending");
  EXPECT_CONTAINS(error_message([&] {
                    testing::write_bytes(dir.file("not.sqlite"), std::string(200, 'x'));
                    SweepIndex broken(dir.file("not.sqlite"));
                  }),
                  "not.sqlite");
}

}  // namespace
}  // namespace muonlab::sweep
