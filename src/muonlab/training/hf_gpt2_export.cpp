#include "muonlab/training/hf_gpt2_export.h"

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <cstdlib>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/atomic_folder.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/read_file.h"
#include "muonlab/training/run_folder.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/data/byte_tokenizer.h"
#include "muonlab/data/gpt2_tokenizer.h"
#include "muonlab/data/tokenizer.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/training/hf_llama_export.h"
#include "muonlab/training/hf_tensor_taker.h"
#include "muonlab/training/train_config.h"

namespace muonlab::training {
namespace {
namespace fs = std::filesystem;
using models::ModelConfig;

// OpenAI's id for <|endoftext|>, the last of GPT-2's 50257 tokens.
constexpr int64_t kGpt2EndOfText = 50256;

// ---- weights ----------------------------------------------------------------

// HF's Conv1D keeps its weight as [in, out]; torch's Linear as [out, in].
torch::Tensor as_conv1d_weight(const torch::Tensor& linear_weight) { return linear_weight.t(); }

// One HF GPT-2 layer's tensors (prefix "h.<i>."), in the Hub file's order.
void add_block(HfTensorTaker& ours, const std::string& prefix, bool fused_qkv, NamedTensors& hf) {
  const auto add = [&](const std::string& name, const torch::Tensor& tensor) {
    hf.emplace_back(prefix + name, contiguous_fp32_copy(tensor));
  };
  const auto same = [&](const std::string& name) { add(name, ours.take(prefix + name)); };
  const auto linear = [&](const std::string& hf_name, const std::string& our_name) {
    add(hf_name + ".weight", as_conv1d_weight(ours.take(prefix + our_name + ".weight")));
    add(hf_name + ".bias", ours.take(prefix + our_name + ".bias"));
  };

  same("ln_1.weight");
  same("ln_1.bias");
  if (fused_qkv) {
    linear("attn.c_attn", "attn.c_attn");
    linear("attn.c_proj", "attn.c_proj");
  } else {
    // c_attn's output is q, k, v side by side, which stacking the three
    // Linear weights' output rows gives.
    const auto stacked = [&](const char* field) {
      return torch::cat({ours.take(prefix + "attn.wq." + field), ours.take(prefix + "attn.wk." + field),
                         ours.take(prefix + "attn.wv." + field)},
                        0);
    };
    add("attn.c_attn.weight", as_conv1d_weight(stacked("weight")));
    add("attn.c_attn.bias", stacked("bias"));
    linear("attn.c_proj", "attn.wo");
  }
  same("ln_2.weight");
  same("ln_2.bias");
  linear("mlp.c_fc", "mlp.c_fc");
  linear("mlp.c_proj", "mlp.c_proj");
}

// ---- run folder -------------------------------------------------------------

std::string weights_to_export(const HfExportOptions& options) {
  if (!options.weights.empty()) {
    if (!fs::is_regular_file(options.weights)) fail("weights file '{}' not found", options.weights);
    return options.weights;
  }
  return run_weights(options.run_dir);
}

// `inner` is `outer` or lies inside it (after resolving "..", "." and links).
bool is_within(const fs::path& inner, const fs::path& outer) {
  std::error_code inner_error, outer_error;
  const fs::path inner_path = fs::weakly_canonical(inner, inner_error);
  const fs::path outer_path = fs::weakly_canonical(outer, outer_error);
  if (inner_error || outer_error) return false;
  const fs::path relative = inner_path.lexically_relative(outer_path);
  return !relative.empty() && *relative.begin() != "..";
}

// Checked first, so a refused output costs no weight loading.
void check_output_folder(const HfExportOptions& options) {
  std::error_code error;
  if (fs::exists(options.out_dir, error) && !fs::is_directory(options.out_dir, error)) {
    fail("output '{}' exists and is not a folder", options.out_dir);
  }
  if (fs::exists(options.out_dir, error) && !is_empty_folder(options.out_dir) && !options.force) {
    fail("output folder '{}' exists and is not empty: choose another or pass --force to replace it",
         options.out_dir);
  }
  // --force replaces the output folder; the run must not be inside it.
  if (is_within(options.run_dir, options.out_dir)) {
    fail("output folder '{}' holds the run folder '{}', which the export would replace", options.out_dir,
         options.run_dir);
  }
}

// ---- tokenizer --------------------------------------------------------------

// HF's GPT2Tokenizer files for one run, and the id bos/eos_token_id name.
struct HfTokenizer {
  std::optional<int64_t> end_of_text;
  std::vector<std::pair<std::string, std::string>> files;  // name, content
  std::string note;                                        // why there are no files
};

std::string tokenizer_config_json(int64_t max_length) {
  const std::string eot(data::kEndOfText);
  nlohmann::json json = {{"tokenizer_class", "GPT2Tokenizer"},
                         {"model_max_length", max_length},
                         {"add_prefix_space", false},
                         {"bos_token", eot},
                         {"eos_token", eot},
                         {"unk_token", eot}};
  return json.dump(2) + "\n";
}

std::string special_tokens_map_json() {
  const std::string eot(data::kEndOfText);
  nlohmann::json json = {{"bos_token", eot}, {"eos_token", eot}, {"unk_token", eot}};
  return json.dump(2) + "\n";
}

HfTokenizer hf_tokenizer(const std::string& spec, const ModelConfig& model) {
  HfTokenizer tokenizer;
  if (spec == "byte") {
    tokenizer.end_of_text = data::ByteTokenizer::kEndOfTextId;
    tokenizer.note = fmt::format("tokenizer 'byte' has no Hugging Face class (ids 0-255 are bytes, {} is {})",
                                 data::ByteTokenizer::kEndOfTextId, data::kEndOfText);
    return tokenizer;
  }
  if (const auto json = data::tokenizer_json_file(spec)) {
    // Passed on as it is, once loading has checked it; the fast tokenizer
    // class reads it, with the separator as its bos and eos token.
    const auto loaded = data::load_tokenizer(*json);
    tokenizer.end_of_text = loaded->eot_token();
    const std::string separator = loaded->decode({loaded->eot_token()});
    const nlohmann::json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                                   {"model_max_length", model.block_size},
                                   {"bos_token", separator},
                                   {"eos_token", separator}};
    tokenizer.files = {{"tokenizer.json", read_whole_file(*json)}, {"tokenizer_config.json", config.dump(2) + "\n"}};
    return tokenizer;
  }
  const std::optional<std::string> folder = data::gpt2_files_folder(spec);
  if (!folder) {
    if (spec == "gpt2") tokenizer.end_of_text = kGpt2EndOfText;
    tokenizer.note = fmt::format("tokenizer '{}': encoder.json and vocab.bpe not found (scripts/fetch-data brings them)",
                                 spec);
    return tokenizer;
  }
  // Loading checks the files (ids dense, merges in the vocabulary) before
  // they are passed on, and finds <|endoftext|>'s id.
  const auto gpt2 = data::Gpt2Tokenizer::load(*folder);
  tokenizer.end_of_text = gpt2->eot_token();
  // HF's vocab.json and merges.txt are OpenAI's encoder.json and vocab.bpe,
  // byte for byte (merges.txt keeps the "#version" line, which HF skips).
  tokenizer.files = {{"vocab.json", read_whole_file((fs::path(*folder) / "encoder.json").string())},
                     {"merges.txt", read_whole_file((fs::path(*folder) / "vocab.bpe").string())},
                     {"tokenizer_config.json", tokenizer_config_json(model.block_size)},
                     {"special_tokens_map.json", special_tokens_map_json()}};
  return tokenizer;
}

int64_t parameter_count(const NamedTensors& tensors) {
  int64_t count = 0;
  for (const auto& [name, tensor] : tensors) count += tensor.numel();
  return count;
}

}  // namespace

std::vector<std::string> hf_gpt2_incompatibilities(const ModelConfig& config) {
  HfFieldCheck check("GPT-2");
  const auto text = HfFieldCheck::text;
  check.need(config.norm == models::NormKind::kLayerNorm, "norm", to_string(config.norm), "layernorm");
  check.need(config.position == models::PositionKind::kLearned, "position", to_string(config.position), "learned");
  check.need(config.mlp != models::MlpKind::kSwiglu, "mlp", to_string(config.mlp), "gelu or relu2");
  check.need(config.attention == models::AttentionKind::kMha, "attention", to_string(config.attention), "mha");
  check.need(config.kv_heads() == config.n_head, "n_kv_head", std::to_string(config.n_kv_head),
       fmt::format("0 or n_head = {}", config.n_head));
  check.need(config.feed_forward == models::FeedForwardKind::kDense, "feed_forward", to_string(config.feed_forward),
              "dense");
  check.need(config.bias, "bias", text(config.bias), "true");
  check.need(config.tie_embeddings, "tie_embeddings", text(config.tie_embeddings), "true");
  check.need(!config.qk_norm, "qk_norm", text(config.qk_norm), "false");
  check.need(config.logit_softcap == 0, "logit_softcap", fmt::format("{}", config.logit_softcap), "0");
  return check.problems();
}

void check_hf_gpt2_compatible(const ModelConfig& config) {
  const auto problems = hf_gpt2_incompatibilities(config);
  if (!problems.empty()) {
    fail("model '{}' cannot be exported as Hugging Face GPT-2: {}", config.name, fmt::join(problems, "; "));
  }
}

NamedTensors hf_gpt2_tensors(const models::Transformer& model) {
  const ModelConfig& config = model->config();
  check_hf_gpt2_compatible(config);
  HfTensorTaker ours(model, "GPT-2");
  NamedTensors hf;
  const auto same = [&](const std::string& name) { hf.emplace_back(name, contiguous_fp32_copy(ours.take(name))); };
  same("wte.weight");
  same("wpe.weight");
  for (int64_t i = 0; i < config.n_layer; ++i) add_block(ours, fmt::format("h.{}.", i), config.fused_qkv, hf);
  same("ln_f.weight");
  same("ln_f.bias");
  ours.check_all_taken();
  return hf;
}

std::string hf_gpt2_config_json(const ModelConfig& config, std::optional<int64_t> end_of_text) {
  const nlohmann::json token_id = end_of_text ? nlohmann::json(*end_of_text) : nlohmann::json(nullptr);
  const int64_t hidden = config.dense_hidden();
  nlohmann::json json = {
      {"architectures", {"GPT2LMHeadModel"}},
      {"model_type", "gpt2"},
      {"vocab_size", config.vocab_size},
      {"n_positions", config.block_size},
      {"n_ctx", config.block_size},
      {"n_embd", config.d_model},
      {"n_layer", config.n_layer},
      {"n_head", config.n_head},
      // GPT2Config's null means 4 * n_embd.
      {"n_inner", hidden == 4 * config.d_model ? nlohmann::json(nullptr) : nlohmann::json(hidden)},
      // HF's gelu_new is the tanh approximation our GELU MLP uses; its relu2
      // is ReLU squared.
      {"activation_function", config.mlp == models::MlpKind::kRelu2 ? "relu2" : "gelu_new"},
      {"layer_norm_epsilon", config.norm_eps},
      {"initializer_range", config.init_std},
      {"resid_pdrop", 0.0},
      {"embd_pdrop", 0.0},
      {"attn_pdrop", 0.0},
      // Scores scaled by 1/sqrt(head_dim) only, as SDPA's default scale does.
      {"scale_attn_weights", true},
      {"scale_attn_by_inverse_layer_idx", false},
      {"reorder_and_upcast_attn", false},
      {"tie_word_embeddings", true},
      {"bos_token_id", token_id},
      {"eos_token_id", token_id},
      {"use_cache", true},
      {"torch_dtype", "float32"},
  };
  return json.dump(2) + "\n";
}

namespace {

// The Hugging Face class a model's fields fit: GPT-2, else LLaMA; fails
// naming each field against both when neither fits.
bool exports_as_gpt2(const ModelConfig& config) {
  const auto gpt2 = hf_gpt2_incompatibilities(config);
  if (gpt2.empty()) return true;
  const auto llama = hf_llama_incompatibilities(config);
  if (llama.empty()) return false;
  fail("model '{}' has no Hugging Face equivalent: as GPT-2, {}; as LLaMA, {}", config.name, fmt::join(gpt2, "; "),
       fmt::join(llama, "; "));
}

}  // namespace

HfExportResult export_hf(const HfExportOptions& options) {
  check_output_folder(options);
  const TrainConfig run = load_run_config(options.run_dir);
  const bool gpt2 = exports_as_gpt2(run.model);

  HfExportResult result;
  result.model = run.model;
  result.architecture = gpt2 ? "GPT2LMHeadModel" : "LlamaForCausalLM";
  result.weights_path = weights_to_export(options);
  models::Transformer model(run.model);
  load_weights(result.weights_path, model);  // every name and shape, before anything is written
  const NamedTensors tensors = gpt2 ? hf_gpt2_tensors(model) : hf_llama_tensors(model);
  const HfTokenizer tokenizer = hf_tokenizer(run.data.tokenizer, run.model);
  const std::string config_json = gpt2 ? hf_gpt2_config_json(run.model, tokenizer.end_of_text)
                                       : hf_llama_config_json(run.model, tokenizer.end_of_text);

  write_folder_atomically(
      options.out_dir,
      [&](const std::string& tmp_dir) {
        const auto path = [&](const std::string& name) { return (fs::path(tmp_dir) / name).string(); };
        save_safetensors(path("model.safetensors"), tensors, {{"format", "pt"}});
        write_text_file_atomically(path("config.json"), config_json);
        for (const auto& [name, content] : tokenizer.files) write_text_file_atomically(path(name), content);
      },
      options.force);

  result.files = {"model.safetensors", "config.json"};
  for (const auto& file : tokenizer.files) result.files.push_back(file.first);
  result.tensors = static_cast<int64_t>(tensors.size());
  result.parameters = parameter_count(tensors);
  result.tokenizer_note = tokenizer.note;
  return result;
}

}  // namespace muonlab::training
