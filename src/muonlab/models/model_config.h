// The one configuration of muonlab's decoder-only transformer. Every
// architectural choice of the three papers (GPT-2, LLaMA-style, MLA, MoE) is
// a value here; presets name the sizes they trained.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace muonlab::models {

enum class NormKind { kLayerNorm, kRmsNorm };
enum class PositionKind { kLearned, kRope };
// gelu: GPT-2's; swiglu: LLaMA's; relu2: ReLU squared (So et al., "Primer:
// Searching for Efficient Transformers for Language Modeling"), as
// modded-nanogpt's MLP, with GPT-2's layer names.
enum class MlpKind { kGelu, kSwiglu, kRelu2 };
enum class AttentionKind { kMha, kMla };
enum class FeedForwardKind { kDense, kMoe };
// How an MoE layer runs its routed experts (models/expert_dispatch.h): one
// SwiGLU call per expert, all experts in three bmm calls over a padded
// buffer, or in three grouped GEMMs with no padding and no host sync
// (LibTorch 2.9 or later). auto: looped on CPU, batched on CUDA. The same
// result every way.
enum class MoeDispatch { kAuto, kLooped, kBatched, kGrouped };

// Multi-head Latent Attention (DeepSeek-V2): docs/algorithms.md, Multi-head
// Latent Attention.
struct MlaConfig {
  int64_t kv_latent = 0;  // d_c: the cached KV latent
  int64_t q_latent = 0;   // d_c': query compression, 0 for none (q = W_q h)
  int64_t rope_dim = 0;   // d_R: decoupled rotary part of each query/key head
};

// DeepSeekMoE feed-forward: shared experts always on, routed top-k.
struct MoeConfig {
  int64_t num_shared = 0;
  int64_t num_routed = 0;
  int64_t top_k = 0;
  int64_t expert_hidden = 0;      // SwiGLU hidden size of each expert
  bool renormalize = true;        // gates of the chosen experts sum to 1
  double balance_coef = 0.01;     // alpha of the expert-balance loss
  double capacity_factor = 0.0;   // 0: dropless; else capacity = ceil(cf * T * k / N_r)
  MoeDispatch dispatch = MoeDispatch::kAuto;
};

struct ModelConfig {
  std::string name = "custom";
  int64_t vocab_size = 50257;
  int64_t block_size = 1024;  // longest sequence (positions, RoPE tables, KV cache)
  int64_t n_layer = 12;
  int64_t n_head = 12;
  int64_t n_kv_head = 0;  // 0: same as n_head (MHA); fewer: GQA
  int64_t d_model = 768;
  int64_t mlp_hidden = 0;  // 0: 4 d for GELU, 8d/3 rounded up to 64 for SwiGLU

  NormKind norm = NormKind::kLayerNorm;
  PositionKind position = PositionKind::kLearned;
  MlpKind mlp = MlpKind::kGelu;
  AttentionKind attention = AttentionKind::kMha;
  FeedForwardKind feed_forward = FeedForwardKind::kDense;
  bool bias = true;
  bool tie_embeddings = true;
  bool qk_norm = false;
  bool fused_qkv = true;  // one c_attn weight (GPT-2) or separate wq/wk/wv

  double norm_eps = 1e-5;
  double rope_theta = 10000.0;
  double init_std = 0.02;
  // > 0: the logits are capped smoothly to (-cap, cap) as cap * tanh(z / cap)
  // (Gemma 2, modded-nanogpt); 0: plain logits.
  double logit_softcap = 0.0;

  MlaConfig mla;
  MoeConfig moe;

  int64_t head_dim() const { return d_model / n_head; }
  int64_t kv_heads() const { return n_kv_head > 0 ? n_kv_head : n_head; }
  int64_t dense_hidden() const;

  // Throws muonlab::Error naming the first field that is out of range.
  void validate() const;

  // The first of `ids` that is no row of the embedding ([0, vocab_size)).
  std::optional<int64_t> first_id_outside_vocabulary(const std::vector<int64_t>& ids) const;
};

std::string to_string(NormKind kind);
std::string to_string(PositionKind kind);
std::string to_string(MlpKind kind);
std::string to_string(AttentionKind kind);
std::string to_string(FeedForwardKind kind);

// Presets: gpt2-small, gpt2-medium, llama-60m, llama-130m, mla-moe-small,
// mla-dense-small (its dense twin) and the tiny-* ones for tests. Unknown
// names fail with the list of known ones.
ModelConfig model_preset(const std::string& name);
std::vector<std::string> preset_names();

// Sets one field from text, as `--set n_layer=4` or a config file would:
// "n_layer", "norm" (layernorm|rmsnorm), "mla.kv_latent", "moe.top_k", ...
// Unknown keys and unparsable values fail naming the key.
void set_config_field(ModelConfig& config, const std::string& key, const std::string& value);
// "key=value"
void apply_override(ModelConfig& config, const std::string& assignment);
std::vector<std::string> config_field_names();
// Whether `key` is one of config_field_names().
bool is_config_field(const std::string& key);

// One line per field, in set_config_field's key=value syntax.
std::string describe(const ModelConfig& config);
// describe's inverse: a default ModelConfig with each line applied. A
// field without a line keeps its default, as in a description written
// before the field existed. Not validated; an unknown field fails.
ModelConfig parse_description(const std::string& text);

}  // namespace muonlab::models
