// `muonlab bench dist`: data-parallel training steps of a model preset on
// 1, 2, 4... ranks on this machine (c10d Gloo on the CPU, NCCL with one GPU
// per rank), for AdamW and for
// distributed Muon (ZeRO-1, distributed/data_parallel.h). Each rank count is a
// `muonlab launch` of hidden worker ranks; rank 0 reports to a file that the
// parent reads. Per step: the median time of the whole step and of its
// parts (forward + backward, communication, optimizer), the bytes each rank
// sends (the ring / all-to-all model), tokens per second over all ranks and
// the scaling efficiency against one rank (weak scaling: each rank keeps
// its batch, so the global batch grows with the ranks).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace muonlab::bench {

struct DistBenchConfig {
  std::string preset = "tiny-gpt2";
  std::vector<int64_t> ranks = {1, 2, 4};
  std::vector<std::string> optimizers = {"adamw", "muon"};
  int64_t batch = 4;    // sequences per rank
  int64_t seq_len = 0;  // 0: the preset's block_size
  int warmup = 2;
  int steps = 5;
  int64_t bucket_mb = 25;
  int threads = 1;  // per rank: ranks x threads should not exceed the cores
  std::string device = "cpu";  // "cuda": rank r on cuda:r, over NCCL
};

struct DistBenchRow {
  int64_t ranks = 1;
  std::string optimizer;
  double step_seconds = 0;      // medians over timed steps, rank 0's clock
  double compute_seconds = 0;   // forward + backward
  double comm_seconds = 0;      // gradient synchronization (+ all-gather of Muon's matrices)
  double optimizer_seconds = 0;
  double bytes_sent_per_rank = 0;
  double tokens_per_second = 0;  // all ranks together
  // Optimizer state held by each rank after the timed steps, the largest
  // over ranks (sharding divides it: Muon's under distributed Muon, AdamW's
  // under distributed.shard_adamw).
  double state_bytes_per_rank = 0;
};

// One rank's part (under a launcher): times every optimizer, and rank 0
// writes the rows as JSON to `result_path`.
void run_dist_bench_rank(const DistBenchConfig& config, const std::string& result_path);

// The parent: launches each rank count in turn and collects the rows.
std::vector<DistBenchRow> run_dist_bench(const DistBenchConfig& config, std::ostream& log);

std::string format_dist_bench(const std::vector<DistBenchRow>& rows, const DistBenchConfig& config);

}  // namespace muonlab::bench
