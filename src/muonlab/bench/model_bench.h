// `muonlab bench model`: how fast the model zoo runs here.
//
//  - training throughput: forward + loss + backward per preset, as ms per
//    step, tokens/s, µs per token and achieved GFLOP/s of the model's
//    training FLOPs, with tokens/s relative to the first preset that ran;
//  - decoding: MHA against MLA at the same width (the base config with its
//    attention swapped for MLA of latent rank d/2, as in mla-moe-small):
//    KV-cache bytes per token and allocated, prefill and decode tokens/s,
//    with MLA/MHA ratios measured in the same process.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "muonlab/models/model_config.h"

namespace muonlab::bench {

struct ModelBenchConfig {
  torch::Device device = torch::kCPU;
  // Requested element type; CPU always runs fp32 (see resolve_model_dtype).
  torch::Dtype dtype = torch::kFloat32;
  std::vector<std::string> presets;  // training rows; the first that runs is the baseline
  int64_t batch = 4;
  int64_t sequence = 256;  // training tokens per row
  int warmup = 1;
  int reps = 3;
  double max_gib = 16;  // presets whose estimated training memory exceeds this are skipped
  std::string decode_base = "llama-60m";
  int64_t prompt = 64;      // prefill tokens per sequence
  int64_t new_tokens = 64;  // decoded tokens per sequence, one forward pass each
  uint64_t seed = 0;
};

// bf16 (the whole model converted) on CUDA only; on the CPU this bench stays
// fp32. CPU bf16 training is autocast over fp32 weights, as the trainer runs
// it: `muonlab bench train --dtype fp32,bf16` measures that.
torch::Dtype resolve_model_dtype(torch::Dtype requested, const torch::Device& device);

// ---- training throughput --------------------------------------------------

struct TrainingBenchRow {
  std::string preset;
  int64_t parameters = 0;
  double estimated_gib = 0;  // the memory estimate the skip rule used
  std::string skipped;       // non-empty: why the preset did not run
  double seconds_per_step = 0;  // median
  double tokens_per_second = 0;
  double microseconds_per_token = 0;
  double gflop_per_token = 0;  // training FLOPs (forward + backward) per token
  double gflops = 0;           // achieved
  double vs_baseline = 0;      // tokens/s over the baseline's
};

struct TrainingBenchReport {
  std::string device;
  std::string dtype;
  int64_t batch = 0;
  int64_t sequence = 0;
  double max_gib = 0;
  std::string baseline;  // empty when nothing ran
  std::vector<TrainingBenchRow> rows;
};

TrainingBenchReport run_training_bench(const ModelBenchConfig& config);
std::string format_training_bench(const TrainingBenchReport& report);

// Rough peak memory of one training step: weights and gradients with 2x
// headroom for autograd temporaries, plus the activations kept for backward
// (per layer about 16 d + 3 FFN-hidden + 2 H T numbers a token, logits 3 V).
double estimated_training_gib(const models::ModelConfig& config, int64_t batch, int64_t sequence,
                              int64_t element_size);

// ---- decoding: MHA vs MLA -------------------------------------------------

struct DecodeBenchRow {
  std::string name;
  std::string attention;  // "mha" or "mla (d_c 256, d_c' 256, d_R 32)"
  int64_t parameters = 0;
  int64_t cache_numbers_per_token_layer = 0;
  int64_t cache_bytes_per_token = 0;  // over all layers, per sequence
  int64_t cache_allocated_bytes = 0;  // the KvCache of the run: batch x (prompt + new tokens)
  double prefill_tokens_per_second = 0;
  double decode_tokens_per_second = 0;  // batch x new tokens / decode time
  double decode_ms_per_step = 0;        // one forward pass for the whole batch
};

struct DecodeBenchReport {
  std::string device;
  std::string dtype;
  std::string base;
  int64_t d_model = 0;
  int64_t n_head = 0;
  int64_t n_layer = 0;
  int64_t batch = 0;
  int64_t prompt = 0;
  int64_t new_tokens = 0;
  DecodeBenchRow mha;
  DecodeBenchRow mla;
};

// The base with its attention replaced by MLA sized from the base itself
// (d_c = d_c' = d/2, d_R = d_h/2, as mla-moe-small), feed-forward unchanged.
models::ModelConfig mla_variant(const models::ModelConfig& base);

DecodeBenchReport run_decode_bench(const ModelBenchConfig& config);
std::string format_decode_bench(const DecodeBenchReport& report);

}  // namespace muonlab::bench
