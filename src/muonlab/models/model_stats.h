// Sizes computed from the config alone, by formula (the tests check them
// against a built model): parameter counts, FLOPs per token for MFU, and
// KV-cache size per token.
#pragma once

#include <cstdint>

#include "muonlab/models/model_config.h"

namespace muonlab::models {

struct ModelStats {
  int64_t parameters = 0;            // every parameter
  int64_t embedding_parameters = 0;  // wte and wpe (a tied head shares wte)
  // Parameters a token uses: MoE layers count the router, the shared
  // experts and top_k routed ones. Equals `parameters` for dense models.
  int64_t active_parameters = 0;
  // Weights of the matrix products a token goes through, the head included.
  int64_t active_matmul_weights = 0;
  int64_t kv_cache_numbers_per_token = 0;  // over all layers

  // Forward FLOPs per token at context length `sequence`: 2 per active
  // matmul weight, plus attention scores and mixing, 2 T H (d_qk + d_v) per
  // layer (the full T x T product, as nanoGPT and llm.c count it).
  double forward_flops_per_token(int64_t sequence) const;
  // Forward plus backward: 3x forward (6N + 12 L H d_h T for GPT-2).
  double training_flops_per_token(int64_t sequence) const;

  int64_t attention_layers = 0;
  int64_t attention_heads = 0;
  int64_t query_key_dim = 0;  // per head: d_h, or d_h + d_R for MLA
  int64_t value_dim = 0;      // per head
};

ModelStats model_stats(const ModelConfig& config);

}  // namespace muonlab::models
