// Import of a Hugging Face causal language model, the inverse of
// `muonlab export --hf` (hf_gpt2_export.h, hf_llama_export.h): a folder as
// `save_pretrained` writes it, config.json with model.safetensors (or
// sharded, with model.safetensors.index.json), of GPT2LMHeadModel (the
// Hub's openai-community/gpt2 and its sizes) or LlamaForCausalLM (LLaMA,
// Mistral-style GQA, TinyLlama, SmolLM). Settings muonlab's blocks cannot
// reproduce (another activation, RoPE scaling, attention biases, ...) are
// refused by name, so an imported model computes what the original does.
#pragma once

#include <string>

#include "muonlab/models/model_config.h"
#include "muonlab/models/transformer.h"

namespace muonlab::training {

// Whether `path` is a folder holding a Hugging Face config.json (what
// import_hf_model takes), rather than a muonlab run folder.
bool names_hf_model(const std::string& path);

// The model the folder's config.json describes, read without its weights.
// Fails listing every setting muonlab cannot represent.
models::ModelConfig hf_model_config(const std::string& folder);

struct HfImport {
  models::Transformer model{nullptr};
  std::string architecture;  // "GPT2LMHeadModel" or "LlamaForCausalLM"
  int64_t tensors = 0;       // read from the weights files
};

// The folder's model with its weights (fp32, on the CPU). Every parameter
// must come from exactly one tensor of its shape; buffers the files may
// hold (GPT-2's causal mask, LLaMA's rotary inv_freq) are skipped. Fails
// naming the file and tensor at fault.
HfImport import_hf_model(const std::string& folder);

}  // namespace muonlab::training
