// Export of a training run as a Hugging Face model: GPT-2 (here) or, for
// the LLaMA family, LlamaForCausalLM (hf_llama_export.h). For GPT-2, the
// layout `transformers.GPT2LMHeadModel.from_pretrained(folder)` loads:
//
//   model.safetensors  the Hub's openai-community/gpt2 names (wte, wpe,
//                      h.<i>.ln_1, h.<i>.attn.c_attn, ..., ln_f; no lm_head,
//                      which is tied to wte), fp32
//   config.json        GPT2Config
//   vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json
//                      when the run used the GPT-2 tokenizer and its files
//                      are found
//
// HF's GPT-2 computes its linear layers with Conv1D, y = x W + b with W
// [in, out]: the transpose of torch's Linear weight [out, in]. Its attention
// splits c_attn's output into q, k, v (d_model each, heads contiguous inside
// each), as ours does, and scales by 1/sqrt(head_dim), as SDPA's default does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "muonlab/models/model_config.h"
#include "muonlab/models/transformer.h"

namespace muonlab::training {

struct HfExportOptions {
  std::string run_dir;  // written by `muonlab train`: config.toml and the weights
  std::string out_dir;
  // A safetensors file of the run's model. Empty: run_dir/model.safetensors,
  // or else the newest complete checkpoint's.
  std::string weights;
  bool force = false;  // replace a non-empty out_dir
};

struct HfExportResult {
  models::ModelConfig model;         // the run's
  std::string architecture;          // "GPT2LMHeadModel" or "LlamaForCausalLM"
  std::string weights_path;          // the file the weights came from
  std::vector<std::string> files;    // written into out_dir, in order
  int64_t tensors = 0;
  int64_t parameters = 0;
  std::string tokenizer_note;        // why no tokenizer files were written; empty when they were
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// What GPT-2's HF class cannot represent in `config`, one entry per field:
// "'norm' = rmsnorm (GPT-2 needs layernorm)". Empty when it can.
std::vector<std::string> hf_gpt2_incompatibilities(const models::ModelConfig& config);

// Fails listing every incompatibility.
void check_hf_gpt2_compatible(const models::ModelConfig& config);

// The model's weights under HF GPT-2's names, in its layouts (Conv1D weights
// [in, out]; separate wq/wk/wv joined into c_attn): contiguous fp32 CPU
// copies, wte first and ln_f last, as the Hub's file lists them.
NamedTensors hf_gpt2_tensors(const models::Transformer& model);

// config.json's text. `end_of_text` (the tokenizer's <|endoftext|> id)
// becomes bos_token_id and eos_token_id; null when unknown.
std::string hf_gpt2_config_json(const models::ModelConfig& config, std::optional<int64_t> end_of_text);

// As GPT-2 when the model's fields fit it, else as LLaMA; a model that fits
// neither (MLA, MoE, ...) is refused naming every field against both.
// Checks everything it can (the output folder, the model's fields, the
// weights' names and shapes) before it writes, then writes out_dir through a
// temporary folder and a rename. Fails naming what is wrong.
HfExportResult export_hf(const HfExportOptions& options);

}  // namespace muonlab::training
