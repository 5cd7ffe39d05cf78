// `muonlab bench train`'s arithmetic (overhead fraction, ratios, MFU), and
// its loop on tiny presets with the trainer's optimizers: both optimizers,
// every warm-up and timed step run, errors naming the option.
// tests/CMakeLists.txt runs the command itself with the trainer's optimizer.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "muonlab/bench/nanogpt_peer.h"
#include "muonlab/bench/train_bench.h"
#include "muonlab/core/errors.h"
#include "test_util.h"

namespace muonlab::bench {
namespace {

using testing::error_message;

TEST(TrainBench, OverheadIsMuonsExtraOptimizerTimeOverAdamWsWholeStep) {
  // AdamW: 90 ms forward+backward + 10 ms step; Muon's step takes 60 ms.
  EXPECT_DOUBLE_EQ(muon_overhead_fraction(0.060, 0.010, 0.100), 0.5);
  EXPECT_DOUBLE_EQ(muon_overhead_fraction(0.010, 0.010, 0.100), 0.0);
  // A faster Muon step is a negative overhead, not clamped away.
  EXPECT_DOUBLE_EQ(muon_overhead_fraction(0.005, 0.010, 0.100), -0.05);
}

TEST(TrainBench, RatiosAreMuonOverAdamW) {
  OptimizerStepTiming adamw{"adamw", 0.090, 0.010, 0.100, 1000.0, std::nullopt};
  OptimizerStepTiming muon{"muon", 0.090, 0.060, 0.150, 1000.0 / 1.5, std::nullopt};
  const auto r = compare_muon_with_adamw(adamw, muon);
  EXPECT_DOUBLE_EQ(r.step_ratio, 1.5);
  EXPECT_DOUBLE_EQ(r.optimizer_ratio, 6.0);
  EXPECT_DOUBLE_EQ(r.tokens_per_second_ratio, 1.0 / 1.5);
  EXPECT_DOUBLE_EQ(r.overhead_fraction, 0.5);
}

TEST(TrainBench, MfuNeedsAPeak) {
  EXPECT_FALSE(model_flops_utilization(1000, 6e9, std::nullopt).has_value());
  EXPECT_FALSE(model_flops_utilization(1000, 6e9, 0.0).has_value());
  EXPECT_DOUBLE_EQ(*model_flops_utilization(1000, 6e9, 12e12), 0.5);
}

TEST(TrainBench, DefaultPresetsOnCpuAreTheSmallOnes) {
  const auto presets = default_train_bench_presets(torch::kCPU);
  EXPECT_EQ(presets, (std::vector<std::string>{"llama-60m", "mla-moe-small"}));
}

TrainBenchConfig tiny_config() {
  TrainBenchConfig config;
  config.presets = {"tiny-gpt2", "tiny-mla-moe"};
  config.batch = 2;
  config.seq_len = 8;
  config.warmup = 1;
  config.steps = 2;
  config.peer = false;
  return config;
}

TEST(TrainBench, RunsEveryStepOfBothOptimizersPerPreset) {
  const auto report = run_train_bench(tiny_config());
  ASSERT_EQ(report.rows.size(), 2u);
  for (const auto& row : report.rows) {
    EXPECT_EQ(row.adamw.optimizer, "adamw");
    EXPECT_EQ(row.muon.optimizer, "muon");
    EXPECT_EQ(row.adamw.steps_run, 1 + 2);  // warm-up + timed
    EXPECT_EQ(row.muon.steps_run, 1 + 2);
    EXPECT_TRUE(row.skipped.empty()) << row.preset;
    EXPECT_GT(row.gflop_per_token, 0);
    EXPECT_GT(row.adamw.tokens_per_second, 0);
    EXPECT_NEAR(row.muon.step_seconds, row.muon.forward_backward_seconds + row.muon.optimizer_seconds,
                0.5 * row.muon.step_seconds);  // medians of sums, not sums of medians
    EXPECT_FALSE(row.adamw.mfu.has_value());  // CPU: no peak
  }
  const auto text = format_train_bench(report);
  EXPECT_CONTAINS(text, "MFU n/a: no peak FLOP/s known for cpu; give --peak-tflops");
  EXPECT_CONTAINS(text, "Muon vs AdamW in this process (muon / adamw)");
  EXPECT_CONTAINS(text, "tiny-mla-moe");
}

TEST(TrainBench, PeerRatiosArePairedByRound) {
  // muonlab / peer per round: 1.1, 0.9, 1.2, 1.0, 1.05.
  const PeerRatioSummary summary = summarize_peer_ratios({110, 90, 120, 100, 105}, {100, 100, 100, 100, 100});
  EXPECT_EQ(summary.rounds, 5);
  EXPECT_EQ(summary.at_least_even, 4);
  const RoundsSummary& r = summary.ratio;
  EXPECT_DOUBLE_EQ(r.median, 1.05);
  EXPECT_DOUBLE_EQ(r.min, 0.9);
  EXPECT_DOUBLE_EQ(r.max, 1.2);
  EXPECT_LE(r.min, r.low);
  EXPECT_LE(r.low, r.median);
  EXPECT_LE(r.median, r.high);
  EXPECT_LE(r.high, r.max);
  EXPECT_LT(r.low, r.high);
  // Paired, not pooled: the same tokens/s in another order give other ratios.
  EXPECT_DOUBLE_EQ(summarize_peer_ratios({100, 200}, {200, 100}).ratio.min, 0.5);
  EXPECT_CONTAINS(error_message([] { summarize_peer_ratios({1, 2}, {1}); }),
                  "2 rounds of muonlab against 1 of the peer");
}

TEST(TrainBench, EveryRoundRunsBothOptimizersAndTheMedianRoundIsShown) {
  auto config = tiny_config();
  config.presets = {"tiny-gpt2"};
  config.rounds = 3;
  const auto report = run_train_bench(config);
  const TrainBenchRow& row = report.rows.at(0);
  ASSERT_EQ(row.adamw_rounds.size(), 3u);
  ASSERT_EQ(row.muon_rounds.size(), 3u);
  for (const auto& rounds : {row.adamw_rounds, row.muon_rounds}) {
    std::vector<double> tokens_per_second;
    for (const auto& timing : rounds) {
      EXPECT_EQ(timing.steps_run, 1 + 2);
      tokens_per_second.push_back(timing.tokens_per_second);
    }
    std::sort(tokens_per_second.begin(), tokens_per_second.end());
    const auto& shown = rounds.front().optimizer == "adamw" ? row.adamw : row.muon;
    EXPECT_EQ(shown.tokens_per_second, tokens_per_second[1]);
  }
  EXPECT_TRUE(row.peer_adamw_rounds.empty());
  EXPECT_CONTAINS(format_train_bench(report), "3 rounds per preset, in alternating order");
  config.rounds = 0;
  EXPECT_CONTAINS(error_message([&] { run_train_bench(config); }), "--rounds");
}

// The peer builds the same model (its parameter count is checked against
// muonlab's, or the bench fails) and times both optimizers; a preset that is
// not a nanoGPT block is named with what differs.
TEST(TrainBench, NanoGptPeerTimesTheSameModelWhereItCan) {
  if (!find_nanogpt_peer().setup) GTEST_SKIP() << find_nanogpt_peer().missing;
  auto config = tiny_config();
  config.presets = {"tiny-gpt2", "tiny-llama"};
  config.peer = true;
  config.dtype = "fp32";
  config.rounds = 2;
  const auto report = run_train_bench(config);
  ASSERT_EQ(report.rows.size(), 2u);
  ASSERT_TRUE(report.rows[0].peer_adamw_tokens_per_second.has_value());
  EXPECT_GT(*report.rows[0].peer_muon_tokens_per_second, 0);
  EXPECT_EQ(report.rows[0].peer_adamw_rounds.size(), 2u);
  EXPECT_EQ(report.rows[0].peer_muon_rounds.size(), 2u);
  EXPECT_FALSE(report.rows[1].peer_adamw_tokens_per_second.has_value());
  EXPECT_CONTAINS(report.rows[1].peer_note,
                  "not a nanoGPT block: 'norm' = rmsnorm (GPT-2 needs layernorm); 'position' = rope (GPT-2 needs "
                  "learned); 'mlp' = swiglu (GPT-2 needs gelu or relu2)");
  const auto text = format_train_bench(report);
  EXPECT_CONTAINS(text, "muonlab vs the nanoGPT-style PyTorch peer");
  EXPECT_CONTAINS(text, "nanogpt_train.py");
  EXPECT_CONTAINS(text, "muonlab / peer per round, paired (2 rounds)");
}

// bench train gives the peer muonlab's allocator (LD_PRELOAD), and the peer
// reports what its process allocates with; a preload that does not take
// fails the run instead of comparing allocators.
TEST(TrainBench, PeerRunsWithTheAllocatorAsked) {
  const PeerLookup lookup = find_nanogpt_peer();
  if (!lookup.setup) GTEST_SKIP() << lookup.missing;
#ifndef MUONLAB_TCMALLOC_LIBRARY
  GTEST_SKIP() << "the build found no tcmalloc";
#else
  PeerSetup setup = *lookup.setup;
  PeerRequest request;
  request.batch = 2, request.seq_len = 16, request.optimizer = "adamw", request.dtype = "fp32";
  request.warmup = 0, request.steps = 1;
  const auto c = models::model_preset("tiny-gpt2");
  EXPECT_EQ(run_nanogpt_peer(setup, c, request).allocator, "system");
  setup.preload = MUONLAB_TCMALLOC_LIBRARY;
  EXPECT_EQ(run_nanogpt_peer(setup, c, request).allocator, "tcmalloc");
  EXPECT_CONTAINS(describe(setup),
                  fmt::format("LD_PRELOAD={} {} {}", MUONLAB_TCMALLOC_LIBRARY, setup.python, setup.script));
  setup.preload = "/nonexistent/libtcmalloc_minimal.so.4";  // the loader only warns
  EXPECT_CONTAINS(error_message([&] { run_nanogpt_peer(setup, c, request); }),
                  "ran with the system allocator, expected tcmalloc");
#endif
}

TEST(TrainBench, PeerAllocatorChoiceIsChecked) {
  auto config = tiny_config();
  config.peer_allocator = "jemalloc";
  EXPECT_CONTAINS(error_message([&] { run_train_bench(config); }),
                  "--peer-allocator jemalloc: expected same or system");
}

TEST(TrainBench, PeerDifferencesAreNamed) {
  EXPECT_EQ(nanogpt_peer_difference(models::model_preset("gpt2-small")), "");
  auto c = models::model_preset("gpt2-small");
  c.bias = false;
  c.fused_qkv = false;
  c.mlp_hidden = 3 * c.d_model;
  EXPECT_EQ(nanogpt_peer_difference(c),
            "'bias' = false (GPT-2 needs true); 'mlp_hidden' = 2304 (nanoGPT needs 4 d_model = 3072); "
            "'fused_qkv' = false (nanoGPT needs true)");
  auto relu2 = models::model_preset("gpt2-small");
  relu2.mlp = models::MlpKind::kRelu2;  // GPT-2 holds it; the nanoGPT script's MLP is GELU
  EXPECT_EQ(nanogpt_peer_difference(relu2), "'mlp' = relu2 (nanoGPT needs gelu)");
}

TEST(TrainBench, ComparesTwoPrecisionsInOneProcess) {
  auto config = tiny_config();
  config.presets = {"tiny-gpt2"};
  config.dtype = "fp32";
  const auto fp32 = run_train_bench(config);
  config.dtype = "bf16";
  const auto bf16 = run_train_bench(config);
  EXPECT_EQ(fp32.dtype, "fp32");
  EXPECT_EQ(bf16.dtype, "bf16");
  EXPECT_CONTAINS(format_dtype_comparison(fp32, bf16), "bf16 vs fp32 in this process (bf16 / fp32 tokens/s)");
  config.dtype = "fp16";
  EXPECT_CONTAINS(error_message([&] { run_train_bench(config); }), "--dtype fp16: expected auto, fp32 or bf16");
}

TEST(TrainBench, PeakTflopsGivesMfu) {
  auto config = tiny_config();
  config.presets = {"tiny-gpt2"};
  config.peak_tflops = 0.5;
  const auto report = run_train_bench(config);
  ASSERT_TRUE(report.rows[0].muon.mfu.has_value());
  EXPECT_GT(*report.rows[0].muon.mfu, 0);
  EXPECT_CONTAINS(format_train_bench(report), "MFU against 0.5 TFLOP/s (--peak-tflops)");
}

TEST(TrainBench, SkipsPresetsOverTheMemoryLimit) {
  auto config = tiny_config();
  config.max_gib = 1e-9;
  const auto report = run_train_bench(config);
  for (const auto& row : report.rows) {
    EXPECT_FALSE(row.skipped.empty()) << row.preset;
    EXPECT_EQ(row.muon.steps_run + row.adamw.steps_run, 0) << row.preset;
  }
  EXPECT_CONTAINS(format_train_bench(report), "skipped: estimated");
}

TEST(TrainBench, ErrorsNameTheOption) {
  auto config = tiny_config();
  config.seq_len = 64;
  EXPECT_CONTAINS(error_message([&] { run_train_bench(config); }), "--seq-len 64: longer than tiny-gpt2's block_size 32");
  config = tiny_config();
  config.overrides = {"n_head=5"};
  EXPECT_CONTAINS(error_message([&] { run_train_bench(config); }), "--presets tiny-gpt2 with --set n_head=5:");
  config = tiny_config();
  config.overrides = {"n_lyer=1"};
  EXPECT_CONTAINS(error_message([&] { run_train_bench(config); }), "--set n_lyer=1:");
  config = tiny_config();
  config.presets = {"tiny-gpt2", "gpt5"};
  EXPECT_CONTAINS(error_message([&] { run_train_bench(config); }), "--presets gpt5: unknown model preset 'gpt5'");
}

}  // namespace
}  // namespace muonlab::bench
