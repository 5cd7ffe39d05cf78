// Other tools' names for the model config's fields (nanoGPT's n_embd,
// Hugging Face's hidden_size, LLaMA's n_heads, DeepSeek's kv_lora_rank, ...),
// so that a config written with them is answered with muonlab's name
// instead of only a list of fields.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace muonlab::models {

struct ModelFieldAlias {
  std::string field;  // muonlab's: "d_model", "mla.kv_latent"
  std::string whose;  // "nanoGPT's and Hugging Face GPT-2's"
};

// Every alias, by the other tools' name.
const std::map<std::string, ModelFieldAlias>& model_field_aliases();

// The field `name` means where another tool names it so; nullopt when no
// tool listed here does.
std::optional<ModelFieldAlias> model_field_alias(const std::string& name);

// For an unknown field name: " (nanoGPT's and Hugging Face GPT-2's name for
// 'd_model')", " (did you mean 'n_layer'?)" for a near typo of one of
// `fields`, or "".
std::string unknown_model_field_hint(const std::string& name, const std::vector<std::string>& fields);

}  // namespace muonlab::models
