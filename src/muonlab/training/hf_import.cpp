#include "muonlab/training/hf_import.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "muonlab/core/errors.h"
#include "muonlab/core/read_file.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::training {
namespace {
namespace fs = std::filesystem;
using models::ModelConfig;
using nlohmann::json;

constexpr const char* kGpt2 = "GPT2LMHeadModel";
constexpr const char* kLlama = "LlamaForCausalLM";

// ---- config.json ------------------------------------------------------------

// Reads config.json's fields, remembering every one muonlab cannot follow.
class HfConfigReader {
 public:
  HfConfigReader(const json& config, std::string source) : config_(config), source_(std::move(source)) {}

  int64_t count(const char* key) const {
    const json* value = find(key);
    if (value == nullptr || !value->is_number_integer() || value->get<int64_t>() <= 0) {
      fail("{}: '{}' = {}: expected a positive integer", source_, key, value ? value->dump() : "missing");
    }
    return value->get<int64_t>();
  }
  double number(const char* key, double otherwise) const {
    const json* value = find(key);
    if (value == nullptr || value->is_null()) return otherwise;
    if (!value->is_number()) fail("{}: '{}' = {}: expected a number", source_, key, value->dump());
    return value->get<double>();
  }
  bool flag(const char* key, bool otherwise) const {
    const json* value = find(key);
    if (value == nullptr || value->is_null()) return otherwise;
    if (!value->is_boolean()) fail("{}: '{}' = {}: expected true or false", source_, key, value->dump());
    return value->get<bool>();
  }
  // `key` may be left out or null, or else must hold `expected`.
  void need(const char* key, const json& expected, const std::string& why) {
    const json* value = find(key);
    if (value != nullptr && !value->is_null() && *value != expected) {
      refused_.push_back(fmt::format("'{}' = {} ({})", key, value->dump(), why));
    }
  }
  void refuse(const std::string& problem) { refused_.push_back(problem); }
  const json* find(const char* key) const {
    const auto it = config_.find(key);
    return it == config_.end() ? nullptr : &*it;
  }
  void check() const {
    if (refused_.empty()) return;
    fail("{}: muonlab cannot reproduce this model: {}", source_, fmt::join(refused_, "; "));
  }

 private:
  const json& config_;
  std::string source_;
  std::vector<std::string> refused_;
};

ModelConfig gpt2_config(HfConfigReader& read) {
  ModelConfig c;  // GPT-2's blocks: LayerNorm, learned positions, GELU, biases, fused c_attn, tied head
  c.name = "hf-gpt2";
  c.vocab_size = read.count("vocab_size");
  c.block_size = read.count("n_positions");
  c.d_model = read.count("n_embd");
  c.n_layer = read.count("n_layer");
  c.n_head = read.count("n_head");
  const json* inner = read.find("n_inner");
  if (inner != nullptr && !inner->is_null()) c.mlp_hidden = read.count("n_inner");
  const json* activation = read.find("activation_function");
  const std::string act = activation && activation->is_string() ? activation->get<std::string>() : "gelu_new";
  if (act == "relu2") {
    c.mlp = models::MlpKind::kRelu2;
  } else if (act != "gelu_new" && act != "gelu_pytorch_tanh") {
    read.refuse(fmt::format("'activation_function' = \"{}\" (muonlab's GELU is the tanh approximation: gelu_new)",
                            act));
  }
  c.norm_eps = read.number("layer_norm_epsilon", 1e-5);
  c.init_std = read.number("initializer_range", 0.02);
  read.need("scale_attn_weights", true, "muonlab scales attention scores by 1/sqrt(head_dim)");
  read.need("scale_attn_by_inverse_layer_idx", false, "muonlab does not scale scores by layer");
  read.need("tie_word_embeddings", true, "GPT-2's head is its token embedding");
  return c;
}

ModelConfig llama_config(HfConfigReader& read) {
  ModelConfig c;
  c.name = "hf-llama";
  c.norm = models::NormKind::kRmsNorm;
  c.position = models::PositionKind::kRope;
  c.mlp = models::MlpKind::kSwiglu;
  c.bias = false;
  c.fused_qkv = false;
  c.vocab_size = read.count("vocab_size");
  c.block_size = read.count("max_position_embeddings");
  c.d_model = read.count("hidden_size");
  c.n_layer = read.count("num_hidden_layers");
  c.n_head = read.count("num_attention_heads");
  c.n_kv_head = read.find("num_key_value_heads") ? read.count("num_key_value_heads") : 0;
  c.mlp_hidden = read.count("intermediate_size");
  c.norm_eps = read.number("rms_norm_eps", 1e-6);
  c.rope_theta = read.number("rope_theta", 10000.0);
  c.init_std = read.number("initializer_range", 0.02);
  c.tie_embeddings = read.flag("tie_word_embeddings", false);
  if (const json* head_dim = read.find("head_dim"); head_dim && !head_dim->is_null() && c.d_model % c.n_head == 0) {
    read.need("head_dim", c.d_model / c.n_head, "muonlab's heads are hidden_size / num_attention_heads wide");
  }
  read.need("hidden_act", "silu", "muonlab's SwiGLU gates with SiLU");
  read.need("rope_scaling", nullptr, "muonlab's RoPE has no scaling");
  read.need("attention_bias", false, "muonlab's LLaMA attention has no biases");
  read.need("mlp_bias", false, "muonlab's SwiGLU has no biases");
  return c;
}

std::string architecture_of(const json& config, const std::string& source) {
  const json* architectures = config.contains("architectures") ? &config["architectures"] : nullptr;
  const std::string type = config.value("model_type", "");
  std::set<std::string> named;
  if (architectures != nullptr && architectures->is_array()) {
    for (const auto& name : *architectures) {
      if (name.is_string()) named.insert(name.get<std::string>());
    }
  }
  if (type == "gpt2" || named.count(kGpt2)) return kGpt2;
  if (type == "llama" || named.count(kLlama)) return kLlama;
  fail("{}: model_type '{}' ({}): muonlab imports GPT-2 (GPT2LMHeadModel) and LLaMA (LlamaForCausalLM)", source,
       type, architectures ? architectures->dump() : "no architectures");
}

json read_json_file(const fs::path& path) {
  try {
    return json::parse(read_whole_file(path.string()));
  } catch (const json::exception& e) {
    fail("'{}': not valid JSON: {}", path.string(), e.what());
  }
}

// The model config.json describes, as `architecture` (architecture_of).
ModelConfig model_config_of(const json& config, const std::string& architecture, const std::string& source) {
  HfConfigReader read(config, source);
  ModelConfig model = architecture == kGpt2 ? gpt2_config(read) : llama_config(read);
  read.check();
  try {
    model.validate();
  } catch (const Error& error) {
    fail("{}: {}", source, error.what());
  }
  return model;
}

// ---- weights ----------------------------------------------------------------

// The weights files of the folder: model.safetensors, or the shards its
// model.safetensors.index.json lists.
std::vector<std::string> weights_files(const fs::path& folder) {
  if (fs::is_regular_file(folder / "model.safetensors")) return {(folder / "model.safetensors").string()};
  const fs::path index = folder / "model.safetensors.index.json";
  if (!fs::is_regular_file(index)) {
    fail("'{}' has neither model.safetensors nor model.safetensors.index.json (only safetensors weights are read; "
         "convert a pytorch_model.bin with transformers' save_pretrained(safe_serialization=True))",
         folder.string());
  }
  const json parsed = read_json_file(index);
  if (!parsed.contains("weight_map") || !parsed["weight_map"].is_object()) {
    fail("'{}': no \"weight_map\" object of tensor names to files", index.string());
  }
  std::set<std::string> files;
  const json& weight_map = parsed.at("weight_map");
  for (const auto& entry : weight_map.items()) files.insert((folder / entry.value().get<std::string>()).string());
  return {files.begin(), files.end()};
}

// One HF tensor's place in the model: our parameter's name, and whether it
// is stored transposed (HF GPT-2's Conv1D weights are [in, out]).
struct Place {
  std::string ours;
  bool transposed = false;
};

// HF GPT-2's names, with or without the "transformer." prefix that
// save_pretrained adds, and the "lm_head.weight" it may add (tied: wte).
std::map<std::string, Place> gpt2_places(const ModelConfig& c) {
  std::map<std::string, Place> places{{"wte.weight", {"wte.weight"}}, {"wpe.weight", {"wpe.weight"}},
                                      {"ln_f.weight", {"ln_f.weight"}}, {"ln_f.bias", {"ln_f.bias"}}};
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string h = fmt::format("h.{}.", i);
    for (const char* norm : {"ln_1", "ln_2"}) {
      for (const char* field : {".weight", ".bias"}) places[h + norm + field] = {h + norm + field};
    }
    for (const char* linear : {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"}) {
      places[h + linear + ".weight"] = {h + linear + ".weight", true};
      places[h + linear + ".bias"] = {h + linear + ".bias"};
    }
  }
  return places;
}

std::map<std::string, Place> llama_places(const ModelConfig& c) {
  std::map<std::string, Place> places{{"model.embed_tokens.weight", {"wte.weight"}},
                                      {"model.norm.weight", {"ln_f.weight"}}};
  if (!c.tie_embeddings) places["lm_head.weight"] = {"lm_head.weight"};
  const std::vector<std::pair<const char*, const char*>> layer{
      {"input_layernorm", "ln_1"},         {"self_attn.q_proj", "attn.wq"}, {"self_attn.k_proj", "attn.wk"},
      {"self_attn.v_proj", "attn.wv"},     {"self_attn.o_proj", "attn.wo"}, {"post_attention_layernorm", "ln_2"},
      {"mlp.gate_proj", "mlp.w1"},         {"mlp.up_proj", "mlp.w3"},       {"mlp.down_proj", "mlp.w2"}};
  for (int64_t i = 0; i < c.n_layer; ++i) {
    for (const auto& [hf, ours] : layer) {
      places[fmt::format("model.layers.{}.{}.weight", i, hf)] = {fmt::format("h.{}.{}.weight", i, ours)};
    }
  }
  return places;
}

// Buffers, not parameters: GPT-2's causal mask (h.<i>.attn.bias and
// masked_bias) and LLaMA's rotary inverse frequencies.
bool is_buffer(const std::string& name) {
  const auto ends_with = [&](const std::string& tail) {
    return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
  };
  return ends_with(".attn.bias") || ends_with(".attn.masked_bias") || ends_with("rotary_emb.inv_freq");
}

// The name as the places know it: GPT-2's saved "transformer." prefix off.
std::string without_prefix(const std::string& name, const std::string& architecture) {
  const std::string prefix = "transformer.";
  if (architecture == kGpt2 && name.rfind(prefix, 0) == 0) return name.substr(prefix.size());
  return name;
}

}  // namespace

bool names_hf_model(const std::string& path) {
  return fs::is_directory(path) && fs::is_regular_file(fs::path(path) / "config.json") &&
         !fs::is_regular_file(fs::path(path) / "config.toml");
}

ModelConfig hf_model_config(const std::string& folder) {
  const fs::path path = fs::path(folder) / "config.json";
  const json config = read_json_file(path);
  return model_config_of(config, architecture_of(config, path.string()), path.string());
}

HfImport import_hf_model(const std::string& folder) {
  const fs::path config_path = fs::path(folder) / "config.json";
  const json config = read_json_file(config_path);
  HfImport result;
  result.architecture = architecture_of(config, config_path.string());
  const ModelConfig model_config = model_config_of(config, result.architecture, config_path.string());
  result.model = models::Transformer(model_config);
  const auto places = result.architecture == kGpt2 ? gpt2_places(model_config) : llama_places(model_config);
  auto params = result.model->named_parameters();
  std::set<std::string> filled;
  torch::NoGradGuard no_grad;
  for (const auto& file : weights_files(folder)) {
    for (const auto& [hf_name, tensor] : load_safetensors(file).tensors) {
      ++result.tensors;
      const std::string name = without_prefix(hf_name, result.architecture);
      // GPT-2's head, where a file holds it, is the token embedding again.
      if (result.architecture == kGpt2 && name == "lm_head.weight") continue;
      const auto place = places.find(name);
      if (place == places.end()) {
        if (is_buffer(name)) continue;
        fail("'{}': tensor '{}' has no place in muonlab's {} model", file, hf_name, result.architecture);
      }
      torch::Tensor& param = params[place->second.ours];
      const torch::Tensor value = place->second.transposed && tensor.dim() == 2 ? tensor.t() : tensor;
      if (value.sizes() != param.sizes()) {
        fail("'{}': tensor '{}' has shape {}{}, expected {} for config.json's model", file, hf_name,
             shape_string(tensor.sizes()), place->second.transposed ? " (stored [in, out])" : "",
             shape_string(place->second.transposed ? param.t().sizes() : param.sizes()));
      }
      if (!filled.insert(place->second.ours).second) fail("'{}': tensor '{}' appears twice", file, hf_name);
      param.copy_(value.to(param.scalar_type()));
    }
  }
  for (const auto& [hf_name, place] : places) {
    if (!filled.count(place.ours)) fail("'{}': no tensor '{}' in its weights files", folder, hf_name);
  }
  for (const auto& param : params) {
    if (!filled.count(param.key())) fail("internal: parameter '{}' has no Hugging Face tensor", param.key());
  }
  return result;
}

}  // namespace muonlab::training
