// The NS work `bench optim` reports for Group Muon, against the per-step
// count written out by hand: X X^T (2 m^2 n), A A (2 m^3) and B X (2 m^2 n)
// for an m x n block with m <= n; the tables it prints; its Python peers.
#include "muonlab/bench/optim_bench.h"

#include <gtest/gtest.h>

#include "muonlab/bench/python_peer.h"

#include "test_util.h"

namespace muonlab::bench {
namespace {

double block_flops(double m, double n, double steps) {
  if (m > n) std::swap(m, n);
  return steps * (2 * m * m * n + 2 * m * m * m + 2 * m * m * n);
}

// With the Gram form asked for, the wide and tall matrices count its FLOPs
// (newton_schulz_flops of the config) and the square ones the standard's.
TEST(OptimBench, GramNsWorkCountsTheFormEachMatrixTakes) {
  optim::NewtonSchulzConfig gram;
  gram.method = optim::NsMethod::kGram;
  const auto ns = [&](int64_t r, int64_t c) { return optim::newton_schulz_flops(r, c, gram); };
  const int64_t d = 768;
  EXPECT_DOUBLE_EQ(group_muon_ns_flops(1, d, 12, 0, gram), ns(3 * d, d) + block_flops(d, d, 5) + 2 * ns(d, 4 * d));
  EXPECT_LT(group_muon_ns_flops(1, d, 12, 0, gram), 0.85 * group_muon_ns_flops(1, d, 12, 0, 5));
}

TEST(OptimBench, GroupMuonNsWorkCountsEveryBlock) {
  const double d = 768, K = 5;
  const double mlp = block_flops(4 * d, d, K) + block_flops(d, 4 * d, K);
  // Whole matrices.
  EXPECT_DOUBLE_EQ(group_muon_ns_flops(1, 768, 12, 0, 5), block_flops(3 * d, d, K) + block_flops(d, d, K) + mlp);
  // Head-wise: 36 QKV blocks of 64 x 768, 12 output blocks of 768 x 64.
  EXPECT_DOUBLE_EQ(group_muon_ns_flops(1, 768, 12, 1, 5),
                   36 * block_flops(64, d, K) + 12 * block_flops(d, 64, K) + mlp);
  // g = 6: 6 QKV blocks of 384 x 768, 2 output blocks of 768 x 384.
  EXPECT_DOUBLE_EQ(group_muon_ns_flops(2, 768, 12, 6, 5),
                   2 * (6 * block_flops(384, d, K) + 2 * block_flops(d, 384, K) + mlp));
  // g = H: Q, K and V whole, the output projection whole.
  EXPECT_DOUBLE_EQ(group_muon_ns_flops(1, 768, 12, 12, 5), 3 * block_flops(d, d, K) + block_flops(d, d, K) + mlp);
}

// The interleaved share is a median of per-round ratios with its bootstrap
// interval around it; it is taken only when asked for.
TEST(OptimBench, InterleavedShareIsTakenOnlyWhenAskedAndBracketsItsMedian) {
  OptimBenchConfig config;
  config.layers = 1;
  config.d_model = 32;
  config.variants = false;
  config.reps = 1;
  config.peer = false;
  EXPECT_TRUE(run_optim_bench(config).ceiling_shares.empty());

  config.pairs = 5;
  const auto report = run_optim_bench(config);
  // The default step's, the same step's with the Gram form of NS, and the
  // update alone (the trainer's, after its own finite check).
  ASSERT_EQ(report.ceiling_shares.size(), 3u);
  EXPECT_EQ(report.ceiling_shares[1].step, "muon, ns_method = gram");
  EXPECT_CONTAINS(report.ceiling_shares[2].step, "without the finite check");
  const auto& share = report.ceiling_shares.front();
  EXPECT_EQ(share.pairs, 5);
  EXPECT_GT(share.ceiling_gflops, 0);
  EXPECT_GT(share.ns_alone, 0);
  EXPECT_GT(share.min, 0);
  EXPECT_LE(share.min, share.low);
  EXPECT_LE(share.low, share.median);
  EXPECT_LE(share.median, share.high);
  EXPECT_LE(share.high, share.max);
  EXPECT_NE(format_optim_bench(report).find("5 rounds of: plain matmul, NS iterations alone, step"), std::string::npos);
}

// The CUDA-graph table (filled on CUDA only): time ratio and both steps'
// shares of the plain matmul, from numbers made up so they are easy to check.
TEST(OptimBench, GraphTableGivesTheRatioAndBothShares) {
  OptimBenchReport report;
  report.matmul_gflops = 100;
  GraphBenchRow graphed;
  graphed.name = "muon";
  graphed.eager_seconds = 0.010;
  graphed.graphed_seconds = 0.005;
  graphed.replays = 20;
  graphed.ns_gflop = 0.5;  // 50 GFLOP/s eager (0.50 of the matmul), 100 graphed (1.00)
  GraphBenchRow failed;
  failed.name = "group muon g=1";
  failed.eager_seconds = 0.020;
  failed.failure = "operation not permitted when stream is capturing";
  report.variants.push_back({});  // the graph table follows the family table
  report.graph_rows = {graphed, failed};
  const std::string out = format_optim_bench(report);
  EXPECT_CONTAINS(out, "CUDA graphs");
  EXPECT_CONTAINS(out, "5.00     0.50x       20          0.50            1.00");
  EXPECT_CONTAINS(out, "group muon g=1                20.00  graphed step failed: operation not permitted");
}

// The Python peers (bench/peers/muon_step.py) time the same matrices, where
// a Python with torch is: Keller Jordan's Muon and torch.optim.AdamW always,
// torch.optim.Muon where that torch has it.
TEST(OptimBench, PythonPeersTimeTheSameMatricesWhereTheyCan) {
  const PeerLookup lookup = find_python_peer("muon_step.py");
  if (!lookup.setup) GTEST_SKIP() << lookup.missing;
  OptimBenchConfig config;
  config.layers = 1;
  config.d_model = 32;
  config.variants = false;
  config.warmup = 0;
  config.reps = 1;
  config.peer_rounds = 2;  // then two rounds side by side, after the single run
  const auto report = run_optim_bench(config);
  ASSERT_TRUE(report.peer_times.has_value()) << report.peer;
  ASSERT_EQ(report.peer_rounds.size(), 2u) << report.peer;
  for (const PeerRound& round : report.peer_rounds) {
    EXPECT_GT(round.muon_seconds, 0);
    EXPECT_GT(round.adamw_seconds, 0);
    EXPECT_GT(*round.peer.keller_jordan_muon, 0);
  }
  EXPECT_CONTAINS(report.peer, "muon_step.py");
  EXPECT_GT(*report.peer_times->keller_jordan_muon, 0);
  EXPECT_GT(*report.peer_times->torch_adamw, 0);
  EXPECT_EQ(report.peer_times->adamw_kind, "default");  // fused on CUDA only
  EXPECT_FALSE(report.peer_times->torch_version.empty());
  EXPECT_GT(report.default_muon_seconds, 0);
  EXPECT_GT(report.adamw_seconds, 0);

  config.peer = false;
  const auto without = run_optim_bench(config);
  EXPECT_FALSE(without.peer_times.has_value());
  EXPECT_EQ(without.peer, "not run (--no-peer)");
  EXPECT_TRUE(without.peer_rounds.empty());
  config.peer_rounds = 0;
  EXPECT_CONTAINS(testing::error_message([&] { run_optim_bench(config); }), "--peer-rounds 0: expected");
}

// The peer table's ratios are the peer's time over muonlab's, from numbers
// made up so they are easy to check; a torch without torch.optim.Muon says so.
TEST(OptimBench, PeerTableGivesPeerTimeOverMuonlabs) {
  OptimBenchReport report;
  report.ns_dtype = "bf16";
  report.default_muon_seconds = 0.400;
  report.adamw_seconds = 0.020;
  report.peer = "python3 muon_step.py";
  report.peer_times = PeerStepTimes{0.800, std::nullopt, 0.060, "default", "1.13.0"};
  const std::string out = format_optim_bench(report);
  EXPECT_CONTAINS(out, "peer: python3 muon_step.py");
  EXPECT_CONTAINS(out, "Keller Jordan's Muon (NS bf16)           800.00    Muon, default options (NS bf16)     400.00    2.00x");
  EXPECT_CONTAINS(out, "torch.optim.Muon (NS bf16)           not in torch 1.13.0 (PyTorch 2.9 and later)");
  EXPECT_CONTAINS(out, "torch.optim.AdamW (default)               60.00                              AdamW      20.00    3.00x");
}

// Rounds pair each round's peer time with muonlab's from the same round: made-up
// times whose paired ratios (2, 3, 4) differ from the ratio of the medians of
// each side (2.5 / 1 = 2.5 here).
TEST(OptimBench, PeerRoundsArePairedByRound) {
  OptimBenchReport report;
  report.ns_dtype = "bf16";
  report.default_muon_seconds = 1, report.adamw_seconds = 1;
  report.peer = "python3 muon_step.py";
  report.peer_times = PeerStepTimes{1, std::nullopt, 1, "default", "1.13.0"};
  const std::vector<std::pair<double, double>> muon_and_peer = {{1.0, 2.0}, {0.5, 1.5}, {2.0, 8.0}};
  for (const auto& [ours, theirs] : muon_and_peer) {
    report.peer_rounds.push_back({ours, 0.010, PeerStepTimes{theirs, std::nullopt, 0.030, "default", "1.13.0"}});
  }
  const std::string out = format_optim_bench(report);
  EXPECT_CONTAINS(out, "the same in 3 rounds side by side");
  EXPECT_CONTAINS(out, "Keller Jordan's Muon (NS bf16)       3.00x [");
  EXPECT_CONTAINS(out, "], 2.00-4.00");
  EXPECT_CONTAINS(out, "torch.optim.AdamW (default)          3.00x [3.00, 3.00], 3.00-3.00");
  EXPECT_EQ(out.find("torch.optim.Muon (NS bf16)           1"), std::string::npos);  // not in this torch: no row
}

}  // namespace
}  // namespace muonlab::bench
