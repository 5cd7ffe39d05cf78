// `muonlab bench dist`, run under `muonlab launch -n N` (or torchrun): the
// data-parallel gradient all-reduce of a model preset's parameters on c10d
// Gloo, timed per step, with the bytes each rank sends per step under the
// ring model (2 (N-1)/N of the gradient bytes) and the bandwidth that makes.
// One process (no launcher): nothing is communicated, and it says so.
#pragma once

#include <cstdint>
#include <string>

namespace muonlab::analysis {

struct DistBenchConfig {
  std::string preset = "gpt2-small";
  int warmup = 2;
  int reps = 5;
  int64_t bucket_mb = 25;
};

struct DistBenchResult {
  int64_t world_size = 1;
  int64_t rank = 0;
  int64_t parameters = 0;
  double gradient_bytes = 0;
  double seconds_per_step = 0;     // median all-reduce of every gradient, 0 for one process
  double bytes_sent_per_rank = 0;  // ring all-reduce: 2 (N-1)/N gradient bytes
};

DistBenchResult run_dist_bench(const DistBenchConfig& config);

// The table rank 0 prints.
std::string format_dist_bench(const DistBenchResult& result, const DistBenchConfig& config);

}  // namespace muonlab::analysis
