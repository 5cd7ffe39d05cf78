// Key/value cache for incremental decoding, preallocated for max_length
// tokens. MHA caches keys and values, 2 * H_kv * d_h numbers per token and
// layer; MLA caches only the normalized KV latent and the shared rotary key,
// d_c + d_R numbers, as in DeepSeek-V2.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "muonlab/models/model_config.h"

namespace muonlab::models {

struct LayerKvCache {
  torch::Tensor keys;      // MHA: [B, H_kv, T_max, d_h]
  torch::Tensor values;    // MHA: [B, H_kv, T_max, d_h]
  torch::Tensor latent;    // MLA: [B, T_max, d_c]
  torch::Tensor rope_key;  // MLA: [B, T_max, d_R], rotated
};

class KvCache {
 public:
  KvCache(const ModelConfig& config, int64_t batch, int64_t max_length,
          const torch::TensorOptions& options);

  // Tokens already in the cache: the position of the next token.
  int64_t position() const { return position_; }
  int64_t max_length() const { return max_length_; }
  LayerKvCache& layer(int64_t index) { return layers_.at(index); }
  // Fails, naming the sizes, unless `tokens` more fit.
  void check_room(int64_t tokens) const;
  // Moves past the tokens the last forward pass wrote; fails past max_length.
  void advance(int64_t tokens);
  void reset() { position_ = 0; }
  int64_t allocated_bytes() const;

 private:
  std::vector<LayerKvCache> layers_;
  int64_t max_length_ = 0;
  int64_t position_ = 0;
};

// Numbers cached per token over all layers (MHA: 2 H_kv d_h L; MLA: (d_c + d_R) L).
int64_t kv_cache_numbers_per_token(const ModelConfig& config);

}  // namespace muonlab::models
