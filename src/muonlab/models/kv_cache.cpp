#include "muonlab/models/kv_cache.h"

#include "muonlab/core/errors.h"

namespace muonlab::models {

KvCache::KvCache(const ModelConfig& config, int64_t batch, int64_t max_length,
                 const torch::TensorOptions& options)
    : max_length_(max_length) {
  if (max_length > config.block_size) {
    fail("KV cache of {} tokens is longer than the model's block_size {}", max_length,
         config.block_size);
  }
  for (int64_t i = 0; i < config.n_layer; ++i) {
    LayerKvCache layer;
    if (config.attention == AttentionKind::kMla) {
      layer.latent = torch::zeros({batch, max_length, config.mla.kv_latent}, options);
      layer.rope_key = torch::zeros({batch, max_length, config.mla.rope_dim}, options);
    } else {
      const std::vector<int64_t> shape{batch, config.kv_heads(), max_length, config.head_dim()};
      layer.keys = torch::zeros(shape, options);
      layer.values = torch::zeros(shape, options);
    }
    layers_.push_back(std::move(layer));
  }
}

void KvCache::check_room(int64_t tokens) const {
  if (position_ + tokens > max_length_) {
    fail("KV cache full: {} cached + {} new tokens exceed its {} positions", position_, tokens,
         max_length_);
  }
}

void KvCache::advance(int64_t tokens) {
  check_room(tokens);
  position_ += tokens;
}

int64_t KvCache::allocated_bytes() const {
  int64_t bytes = 0;
  for (const auto& layer : layers_) {
    for (const auto* t : {&layer.keys, &layer.values, &layer.latent, &layer.rope_key}) {
      if (t->defined()) bytes += t->numel() * t->element_size();
    }
  }
  return bytes;
}

int64_t kv_cache_numbers_per_token(const ModelConfig& config) {
  const int64_t per_layer = config.attention == AttentionKind::kMla
                                ? config.mla.kv_latent + config.mla.rope_dim
                                : 2 * config.kv_heads() * config.head_dim();
  return per_layer * config.n_layer;
}

}  // namespace muonlab::models
