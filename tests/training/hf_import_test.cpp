// Import of Hugging Face GPT-2 and LLaMA folders: files written here by
// HF's names and shapes (not by muonlab's export), imported, and muonlab's
// logits compared with HF's computation on the same tensors
// (hf_reference.h); then the round trip through `export --hf`, and the
// settings and files an import must refuse.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "data/data_test_util.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/training/hf_gpt2_export.h"
#include "muonlab/training/hf_import.h"
#include "muonlab/training/hf_llama_export.h"
#include "test_util.h"
#include "training/hf_reference.h"

namespace muonlab::training {
namespace {
namespace fs = std::filesystem;
using hf_reference::HfTensors;
using hf_reference::Shape;
using nlohmann::json;

// Entries of order 0.1-1 (gains near 1), so a transposed or swapped weight
// changes the logits by far more than rounding.
HfTensors random_tensors(const std::map<std::string, Shape>& shapes, uint64_t seed) {
  torch::manual_seed(seed);
  HfTensors tensors;
  for (const auto& [name, shape] : shapes) {
    const bool gain = shape.size() == 1 && name.find("bias") == std::string::npos;
    tensors[name] = gain ? 1 + 0.1 * torch::randn(shape) : 0.3 * torch::randn(shape);
  }
  return tensors;
}

void write_hf_folder(const std::string& folder, const json& config, const HfTensors& tensors,
                  const std::string& prefix = "") {
  fs::create_directories(folder);
  std::ofstream(fs::path(folder) / "config.json") << config.dump(2);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& [name, tensor] : tensors) named.emplace_back(prefix + name, tensor);
  save_safetensors((fs::path(folder) / "model.safetensors").string(), named);
}

json small_gpt2_config() {
  return {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", 48}, {"n_positions", 16},
          {"n_embd", 32}, {"n_layer", 2}, {"n_head", 4}, {"n_inner", nullptr}, {"activation_function", "gelu_new"},
          {"layer_norm_epsilon", 1e-5}, {"tie_word_embeddings", true}};
}

json small_llama_config(int64_t kv_heads, bool tied) {
  return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 48},
          {"max_position_embeddings", 16}, {"hidden_size", 32}, {"intermediate_size", 40},
          {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", kv_heads},
          {"hidden_act", "silu"}, {"rms_norm_eps", 1e-6}, {"rope_theta", 500.0}, {"rope_scaling", nullptr},
          {"attention_bias", false}, {"tie_word_embeddings", tied}};
}

std::map<std::string, Shape> llama_shapes(const json& config) {
  const int64_t d = 32, kv = config["num_key_value_heads"].get<int64_t>() * 8, hidden = 40;
  std::map<std::string, Shape> shapes{{"model.embed_tokens.weight", {48, d}}, {"model.norm.weight", {d}}};
  if (!config["tie_word_embeddings"].get<bool>()) shapes["lm_head.weight"] = {48, d};
  for (int i = 0; i < 2; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    shapes[l + "input_layernorm.weight"] = {d};
    shapes[l + "post_attention_layernorm.weight"] = {d};
    shapes[l + "self_attn.q_proj.weight"] = {d, d};
    shapes[l + "self_attn.k_proj.weight"] = {kv, d};
    shapes[l + "self_attn.v_proj.weight"] = {kv, d};
    shapes[l + "self_attn.o_proj.weight"] = {d, d};
    shapes[l + "mlp.gate_proj.weight"] = {hidden, d};
    shapes[l + "mlp.up_proj.weight"] = {hidden, d};
    shapes[l + "mlp.down_proj.weight"] = {d, hidden};
  }
  return shapes;
}

torch::Tensor tokens_to_score() { return torch::tensor({3, 47, 0, 12, 12, 30, 5, 41, 9, 22}, torch::kLong); }

torch::Tensor muonlab_logits(models::Transformer& model) {
  model->eval();
  torch::NoGradGuard no_grad;
  return model(tokens_to_score().unsqueeze(0)).logits.squeeze(0).to(torch::kFloat64);
}

TEST(HfImport, Gpt2FilesComputeWhatHuggingFaceComputes) {
  testing::ScratchDir dir;
  const json config = small_gpt2_config();
  const HfTensors hf = random_tensors(hf_reference::hub_gpt2_shapes(48, 16, 32, 2, 128), 1);
  // As save_pretrained writes GPT2LMHeadModel: "transformer." names, the tied
  // head again, and (older files) each layer's causal-mask buffer.
  HfTensors saved = hf;
  saved["h.0.attn.bias"] = torch::ones({1, 1, 16, 16}).tril();
  write_hf_folder(dir.path() + "/gpt2", config, saved, "transformer.");
  {
    std::vector<std::pair<std::string, torch::Tensor>> with_head;
    for (const auto& item : load_safetensors(dir.path() + "/gpt2/model.safetensors").tensors) with_head.push_back(item);
    with_head.emplace_back("lm_head.weight", hf.at("wte.weight"));
    save_safetensors(dir.path() + "/gpt2/model.safetensors", with_head);
  }
  ASSERT_TRUE(names_hf_model(dir.path() + "/gpt2"));
  auto imported = import_hf_model(dir.path() + "/gpt2");
  EXPECT_EQ(imported.architecture, "GPT2LMHeadModel");
  EXPECT_EQ(imported.model->config().n_layer, 2);
  EXPECT_TENSOR_NEAR(muonlab_logits(imported.model), hf_reference::hf_gpt2_logits(hf, config, tokens_to_score()), 1e-4);
}

TEST(HfImport, LlamaFilesComputeWhatHuggingFaceComputes) {
  // MHA with an untied head, GQA with a tied one.
  for (const auto& [kv_heads, tied] : {std::pair<int64_t, bool>{4, false}, {2, true}}) {
    testing::ScratchDir dir;
    const json config = small_llama_config(kv_heads, tied);
    const HfTensors hf = random_tensors(llama_shapes(config), 2);
    HfTensors saved = hf;
    saved["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch::ones({4});  // older files keep it
    write_hf_folder(dir.path() + "/llama", config, saved);
    auto imported = import_hf_model(dir.path() + "/llama");
    EXPECT_EQ(imported.architecture, "LlamaForCausalLM");
    EXPECT_EQ(imported.model->config().kv_heads(), kv_heads);
    EXPECT_TENSOR_NEAR(muonlab_logits(imported.model), hf_reference::hf_llama_logits(hf, config, tokens_to_score()),
                       1e-4);
  }
}

TEST(HfImport, ShardedWeightsAreReadThroughTheirIndex) {
  testing::ScratchDir dir;
  const json config = small_llama_config(2, false);
  const HfTensors hf = random_tensors(llama_shapes(config), 3);
  const fs::path folder = dir.path() + "/sharded";
  fs::create_directories(folder);
  std::ofstream(folder / "config.json") << config.dump();
  std::vector<std::pair<std::string, torch::Tensor>> first, second;
  json weight_map;
  for (const auto& [name, tensor] : hf) {
    const bool early = name.find("layers.1.") == std::string::npos;
    (early ? first : second).emplace_back(name, tensor);
    weight_map[name] = early ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  save_safetensors((folder / "model-00001-of-00002.safetensors").string(), first);
  save_safetensors((folder / "model-00002-of-00002.safetensors").string(), second);
  std::ofstream(folder / "model.safetensors.index.json") << json{{"weight_map", weight_map}}.dump();
  auto imported = import_hf_model(folder.string());
  EXPECT_EQ(imported.tensors, static_cast<int64_t>(hf.size()));
  EXPECT_TENSOR_NEAR(muonlab_logits(imported.model), hf_reference::hf_llama_logits(hf, config, tokens_to_score()),
                     1e-4);
}

// What `export --hf` writes imports as the same model, parameter for parameter.
TEST(HfImport, ExportThenImportGivesBackEveryParameter) {
  for (const std::string preset : {"tiny-gpt2", "tiny-llama"}) {
    testing::ScratchDir dir;
    auto config = models::model_preset(preset);
    config.n_kv_head = preset == "tiny-llama" ? 2 : 0;
    torch::manual_seed(4);
    models::Transformer model(config);
    const bool gpt2 = preset == "tiny-gpt2";
    const auto tensors = gpt2 ? hf_gpt2_tensors(model) : hf_llama_tensors(model);
    const std::string text =
        gpt2 ? hf_gpt2_config_json(config, std::nullopt) : hf_llama_config_json(config, std::nullopt);
    write_hf_folder(dir.path() + "/out", json::parse(text), HfTensors(tensors.begin(), tensors.end()));
    auto imported = import_hf_model(dir.path() + "/out");
    auto ours = model->named_parameters();
    auto theirs = imported.model->named_parameters();
    ASSERT_EQ(ours.size(), theirs.size()) << preset;
    for (const auto& item : ours) {
      EXPECT_TRUE(torch::equal(item.value(), theirs[item.key()])) << preset << " " << item.key();
    }
  }
}

std::string import_error(const json& config, const HfTensors& tensors) {
  testing::ScratchDir dir;
  write_hf_folder(dir.path() + "/m", config, tensors);
  return testing::error_message([&] { import_hf_model(dir.path() + "/m"); });
}

TEST(HfImport, WhatMuonlabCannotComputeIsRefusedByName) {
  const HfTensors gpt2 = random_tensors(hf_reference::hub_gpt2_shapes(48, 16, 32, 2, 128), 5);
  json config = small_gpt2_config();
  config["activation_function"] = "gelu";
  config["scale_attn_by_inverse_layer_idx"] = true;
  const std::string refused = import_error(config, gpt2);
  EXPECT_CONTAINS(refused, "muonlab cannot reproduce this model");
  EXPECT_CONTAINS(refused, "'activation_function' = \"gelu\"");
  EXPECT_CONTAINS(refused, "'scale_attn_by_inverse_layer_idx' = true");

  json llama = small_llama_config(4, false);
  llama["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  EXPECT_CONTAINS(import_error(llama, random_tensors(llama_shapes(small_llama_config(4, false)), 5)), "'rope_scaling'");
  EXPECT_CONTAINS(import_error({{"model_type", "bert"}}, {}), "model_type 'bert'");
}

TEST(HfImport, MissingExtraAndMisshapenTensorsAreNamed) {
  const json config = small_gpt2_config();
  HfTensors hf = random_tensors(hf_reference::hub_gpt2_shapes(48, 16, 32, 2, 128), 6);
  HfTensors missing = hf;
  missing.erase("h.1.mlp.c_fc.bias");
  EXPECT_CONTAINS(import_error(config, missing), "no tensor 'h.1.mlp.c_fc.bias'");
  HfTensors extra = hf;
  extra["h.0.attn.q_norm.weight"] = torch::ones({8});
  EXPECT_CONTAINS(import_error(config, extra), "tensor 'h.0.attn.q_norm.weight' has no place");
  HfTensors misshapen = hf;
  misshapen["h.0.mlp.c_fc.weight"] = torch::zeros({128, 32});  // nn.Linear's [out, in], not Conv1D's
  EXPECT_CONTAINS(import_error(config, misshapen),
                  "tensor 'h.0.mlp.c_fc.weight' has shape [128, 32] (stored [in, out]), expected [32, 128]");
}

}  // namespace
}  // namespace muonlab::training
