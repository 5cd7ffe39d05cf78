// `muonlab bench optim`: the optimizer step on GPT-2 small's matrix set
// (per layer: QKV 2304x768, attention out 768x768, MLP 3072x768 and
// 768x3072), Muon batched against the per-parameter loop of the Python
// implementations, with a plain batched matmul of the NS shapes measured in
// the same run as the practical ceiling. Then the Muon family on the same
// matrices, each with its default options (the path a user gets), as ratios
// to Muon (K = 5) in the same process: Muon with Gram Newton-Schulz,
// Muon² (K = 3, also with Gram Newton-Schulz), Muon²-F (K = 3), NorMuon and Group Muon for each group
// size (attention weights cut into blocks of g heads), with the optimizer
// state each keeps per parameter (AdamW's too). And the Python peers on the
// same matrices (bench/peers/muon_step.py): Keller Jordan's Muon,
// torch.optim.Muon and torch.optim.AdamW, against muonlab's default steps.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "muonlab/optimizers/newton_schulz.h"

namespace muonlab::bench {

struct OptimBenchConfig {
  torch::Device device = torch::kCPU;
  int64_t layers = 12;
  int64_t d_model = 768;
  int64_t ns_steps = 5;
  optim::NsDtype ns_dtype = optim::NsDtype::kAuto;
  int warmup = 1;
  int reps = 3;
  uint64_t seed = 0;
  // The Muon family table: heads of the attention weights and the Group
  // Muon group sizes (each must divide n_head); variants = false skips it.
  bool variants = true;
  int64_t n_head = 12;
  std::vector<int64_t> group_sizes = {1, 2, 4, 6, 12};
  int64_t muon2_ns_steps = 3;
  // Rounds of (ceiling run, the NS iterations alone, the default Muon step)
  // timed in alternation for the step's share of the ceiling; 0 skips it.
  int pairs = 0;
  // Also time the Python peers (python_peer.h) where a Python with torch is.
  bool peer = true;
  // Above 1: after the tables, this many rounds of muonlab's default Muon and
  // AdamW steps and one run of the peers, every other round with the peers
  // first, so the ratios pair measurements taken side by side.
  int peer_rounds = 1;
};

// The peers' median step times on the same matrices, device and threads;
// none where a peer did not run (torch.optim.Muon needs PyTorch 2.9).
struct PeerStepTimes {
  std::optional<double> keller_jordan_muon;
  std::optional<double> torch_muon;
  std::optional<double> torch_adamw;
  std::string adamw_kind;  // "fused" or "default"
  std::string torch_version;
};

// One round of config.peer_rounds: muonlab's median steps and the peers'.
struct PeerRound {
  double muon_seconds = 0;
  double adamw_seconds = 0;
  PeerStepTimes peer;
};

// One Muon family member against Muon (K = ns_steps) on the same matrices.
struct VariantBenchRow {
  std::string name;
  int64_t ns_steps = 0;
  double seconds_per_step = 0;  // median
  double vs_muon = 0;           // this time / Muon's
  double ns_gflop = 0;          // NS matmul work per step
  double ns_vs_muon = 0;        // this NS work / Muon's
  double state_bytes_per_parameter = 0;
};

// One Muon family member's step with and without MuonOptions::cuda_graph,
// in the same process (CUDA only).
struct GraphBenchRow {
  std::string name;
  double eager_seconds = 0;    // median
  double graphed_seconds = 0;  // median, after the warm-up step and the capture
  int64_t replays = 0;         // graphed steps that were replays (all timed ones, when it works)
  double ns_gflop = 0;         // NS matmul work per step
  std::string failure;         // why the graphed step failed, or empty
};

struct OptimBenchRow {
  std::string name;
  double seconds_per_step = 0;  // median
  double ns_gflop = 0;          // NS matmul work per step (0 for AdamW)
  double gflops = 0;            // ns_gflop / seconds
  double of_matmul = 0;         // gflops / the plain matmul's
  double vs_loop = 0;           // loop time / this time
};

// The default Muon step's share of the plain matmul ceiling, each step timed
// right after one ceiling run: on a shared or frequency-scaled machine the
// ceiling drifts by a third between runs minutes apart, and the ratio of two
// medians taken apart inherits that drift, the ratio within a pair does not.
struct CeilingShare {
  std::string step;          // which optimizer step was paired
  int64_t pairs = 0;         // rounds
  double ceiling_gflops = 0; // median of the ceiling's runs
  double ns_alone = 0;       // median share of the NS iterations alone
  double median = 0;         // median of the step's per-round shares
  double low = 0;        // 95% bootstrap interval of the median
  double high = 0;
  double min = 0;
  double max = 0;
};

struct OptimBenchReport {
  std::string device;
  std::string ns_dtype;
  int64_t layers = 0;
  int64_t d_model = 0;
  int64_t matrices = 0;
  int64_t parameters = 0;
  double matmul_gflops = 0;  // the ceiling
  std::vector<OptimBenchRow> rows;
  int64_t n_head = 0;
  std::vector<VariantBenchRow> variants;  // first: Muon itself
  double adamw_state_bytes_per_parameter = 0;
  // With config.pairs > 0: the default Muon step's, the same step's with the
  // Gram form of NS (its share counts the standard form's FLOPs), and the
  // default step's without its finite check, as the trainer runs it.
  std::vector<CeilingShare> ceiling_shares;
  // On CUDA, where the build has CUDA graphs.
  std::vector<GraphBenchRow> graph_rows;
  // muonlab's steps with default options, which the peers are compared with.
  double default_muon_seconds = 0;
  double adamw_seconds = 0;
  std::string peer;  // the peer's command, or why it did not run
  std::optional<PeerStepTimes> peer_times;
  std::vector<PeerRound> peer_rounds;  // with config.peer_rounds > 1
};

OptimBenchReport run_optim_bench(const OptimBenchConfig& config);
std::string format_optim_bench(const OptimBenchReport& report);

// The Linear weight shapes (out x in) of one GPT-2 block of width d.
std::vector<std::vector<int64_t>> gpt2_block_matrix_shapes(int64_t d_model);

// NS matmul FLOPs of one step over `layers` GPT-2 blocks of width d_model
// with n_head heads, the attention weights cut into blocks of group_size
// heads (0: whole matrices): the fused QKV into 3 n_head / g row blocks of
// g d_head x d, the output projection into n_head / g column blocks.
double group_muon_ns_flops(int64_t layers, int64_t d_model, int64_t n_head, int64_t group_size, int64_t ns_steps);
// The same for the form `ns` computes each matrix with (the Gram form's
// FLOPs where it takes it).
double group_muon_ns_flops(int64_t layers, int64_t d_model, int64_t n_head, int64_t group_size,
                           const optim::NewtonSchulzConfig& ns);

}  // namespace muonlab::bench
