#include "muonlab/models/model_field_aliases.h"

#include <fmt/format.h>

#include <map>

#include "muonlab/core/nearest_name.h"

namespace muonlab::models {

// Only names that mean exactly the field: Hugging Face's head_dim, for
// example, is not here, since muonlab derives it from d_model / n_head.
const std::map<std::string, ModelFieldAlias>& model_field_aliases() {
  static const std::string kLlama = "Meta's LLaMA and torchtitan's";
  static const std::string kHf = "Hugging Face's";
  static const std::string kHfGpt2 = "Hugging Face GPT-2's";
  static const std::string kDeepSeek = "DeepSeek-V2/V3's";
  static const std::map<std::string, ModelFieldAlias> table{
      {"n_embd", {"d_model", "nanoGPT's and Hugging Face GPT-2's"}},
      {"hidden_size", {"d_model", kHf}},
      {"dim", {"d_model", kLlama}},
      {"n_layers", {"n_layer", kLlama}},
      {"num_hidden_layers", {"n_layer", kHf}},
      {"n_heads", {"n_head", kLlama}},
      {"num_attention_heads", {"n_head", kHf}},
      {"n_kv_heads", {"n_kv_head", kLlama}},
      {"num_key_value_heads", {"n_kv_head", kHf}},
      {"intermediate_size", {"mlp_hidden", kHf}},
      {"n_inner", {"mlp_hidden", kHfGpt2}},
      {"max_position_embeddings", {"block_size", kHf}},
      {"n_positions", {"block_size", kHfGpt2}},
      {"max_seq_len", {"block_size", kLlama}},
      {"rms_norm_eps", {"norm_eps", kHf}},
      {"layer_norm_epsilon", {"norm_eps", kHfGpt2}},
      {"tie_word_embeddings", {"tie_embeddings", kHf}},
      {"initializer_range", {"init_std", kHf}},
      {"final_logit_softcapping", {"logit_softcap", "Hugging Face Gemma 2's"}},
      {"kv_lora_rank", {"mla.kv_latent", kDeepSeek}},
      {"q_lora_rank", {"mla.q_latent", kDeepSeek}},
      {"qk_rope_head_dim", {"mla.rope_dim", kDeepSeek}},
      {"n_routed_experts", {"moe.num_routed", kDeepSeek}},
      {"n_shared_experts", {"moe.num_shared", kDeepSeek}},
      {"num_experts_per_tok", {"moe.top_k", kHf}},
      {"moe_intermediate_size", {"moe.expert_hidden", kDeepSeek}},
      {"norm_topk_prob", {"moe.renormalize", kDeepSeek}},
  };
  return table;
}

std::optional<ModelFieldAlias> model_field_alias(const std::string& name) {
  // "moe.n_routed_experts" as well as "n_routed_experts".
  const auto it = model_field_aliases().find(name.substr(name.rfind('.') + 1));
  if (it == model_field_aliases().end()) return std::nullopt;
  return it->second;
}

std::string unknown_model_field_hint(const std::string& name, const std::vector<std::string>& fields) {
  if (const std::optional<ModelFieldAlias> alias = model_field_alias(name)) {
    return fmt::format(" ({} name for '{}')", alias->whose, alias->field);
  }
  return did_you_mean(name, fields);
}

}  // namespace muonlab::models
