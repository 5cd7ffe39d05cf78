// The LLaMA family's half of `muonlab export --hf` (hf_gpt2_export.h has
// the folder, the tokenizer files and GPT-2): a model with RMSNorm, RoPE,
// SwiGLU and MHA or GQA as transformers.LlamaForCausalLM loads it.
//
//   model.embed_tokens, model.layers.<i>.{input_layernorm, self_attn.{q,k,v,o}_proj,
//   post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm, lm_head
//
// Linear weights keep torch's [out, in]; heads are contiguous rows of
// q_proj / k_proj / v_proj in both; HF's RoPE is the "rotate half" pairing
// (x_j, x_{j + D/2}) with inv_freq = theta^(-2j/D), which is ours; its
// RMSNorm computes in fp32 and multiplies by the gain after, as ours.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "muonlab/models/model_config.h"
#include "muonlab/models/transformer.h"
#include "muonlab/training/hf_gpt2_export.h"

namespace muonlab::training {

// What LlamaForCausalLM cannot represent in `config`, one entry per field
// ("'attention' = mla (LLaMA needs mha)"). Empty when it can.
std::vector<std::string> hf_llama_incompatibilities(const models::ModelConfig& config);

// The model's weights under LlamaForCausalLM's names: contiguous fp32 CPU
// copies, lm_head only when the head is not tied to the embedding.
NamedTensors hf_llama_tensors(const models::Transformer& model);

// config.json's text (LlamaConfig). `end_of_text` becomes bos_token_id and
// eos_token_id; null when unknown.
std::string hf_llama_config_json(const models::ModelConfig& config, std::optional<int64_t> end_of_text);

}  // namespace muonlab::training
