#include "muonlab/training/hf_llama_export.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "muonlab/training/hf_tensor_taker.h"

namespace muonlab::training {

using models::ModelConfig;

std::vector<std::string> hf_llama_incompatibilities(const ModelConfig& config) {
  HfFieldCheck check("LLaMA");
  const auto text = HfFieldCheck::text;
  check.need(config.norm == models::NormKind::kRmsNorm, "norm", to_string(config.norm), "rmsnorm");
  check.need(config.position == models::PositionKind::kRope, "position", to_string(config.position), "rope");
  check.need(config.mlp == models::MlpKind::kSwiglu, "mlp", to_string(config.mlp), "swiglu");
  check.need(config.attention == models::AttentionKind::kMha, "attention", to_string(config.attention), "mha");
  check.need(config.feed_forward == models::FeedForwardKind::kDense, "feed_forward", to_string(config.feed_forward),
              "dense");
  check.need(!config.bias, "bias", text(config.bias), "false");
  check.need(!config.qk_norm, "qk_norm", text(config.qk_norm), "false");
  check.need(config.logit_softcap == 0, "logit_softcap", fmt::format("{}", config.logit_softcap), "0");
  return check.problems();
}

NamedTensors hf_llama_tensors(const models::Transformer& model) {
  const ModelConfig& config = model->config();
  HfTensorTaker ours(model, "LLaMA");
  NamedTensors hf;
  const auto add = [&](const std::string& hf_name, const std::string& our_name) {
    hf.emplace_back(hf_name, contiguous_fp32_copy(ours.take(our_name)));
  };
  add("model.embed_tokens.weight", "wte.weight");
  for (int64_t i = 0; i < config.n_layer; ++i) {
    const std::string hf_layer = fmt::format("model.layers.{}.", i), our_layer = fmt::format("h.{}.", i);
    const auto layer = [&](const std::string& hf_name, const std::string& our_name) {
      add(hf_layer + hf_name + ".weight", our_layer + our_name + ".weight");
    };
    layer("input_layernorm", "ln_1");
    if (config.fused_qkv) {
      // c_attn's rows are the q heads, then the k heads, then the v heads.
      const auto parts = ours.take(our_layer + "attn.c_attn.weight")
                             .split_with_sizes({config.n_head * config.head_dim(), config.kv_heads() * config.head_dim(),
                                                config.kv_heads() * config.head_dim()});
      for (const auto& [name, part] : {std::pair<const char*, torch::Tensor>{"q_proj", parts[0]},
                                       {"k_proj", parts[1]}, {"v_proj", parts[2]}}) {
        hf.emplace_back(hf_layer + "self_attn." + name + ".weight", contiguous_fp32_copy(part));
      }
      layer("self_attn.o_proj", "attn.c_proj");
    } else {
      layer("self_attn.q_proj", "attn.wq");
      layer("self_attn.k_proj", "attn.wk");
      layer("self_attn.v_proj", "attn.wv");
      layer("self_attn.o_proj", "attn.wo");
    }
    layer("post_attention_layernorm", "ln_2");
    layer("mlp.gate_proj", "mlp.w1");
    layer("mlp.up_proj", "mlp.w3");
    layer("mlp.down_proj", "mlp.w2");
  }
  add("model.norm.weight", "ln_f.weight");
  if (!config.tie_embeddings) add("lm_head.weight", "lm_head.weight");
  ours.check_all_taken();
  return hf;
}

std::string hf_llama_config_json(const ModelConfig& config, std::optional<int64_t> end_of_text) {
  const nlohmann::json token_id = end_of_text ? nlohmann::json(*end_of_text) : nlohmann::json(nullptr);
  nlohmann::json json = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"vocab_size", config.vocab_size},
      {"hidden_size", config.d_model},
      {"intermediate_size", config.dense_hidden()},
      {"num_hidden_layers", config.n_layer},
      {"num_attention_heads", config.n_head},
      {"num_key_value_heads", config.kv_heads()},
      {"head_dim", config.head_dim()},
      {"hidden_act", "silu"},
      {"max_position_embeddings", config.block_size},
      {"rms_norm_eps", config.norm_eps},
      {"rope_theta", config.rope_theta},
      {"rope_scaling", nullptr},
      {"attention_bias", false},
      {"mlp_bias", false},
      {"attention_dropout", 0.0},
      {"initializer_range", config.init_std},
      {"tie_word_embeddings", config.tie_embeddings},
      {"bos_token_id", token_id},
      {"eos_token_id", token_id},
      {"use_cache", true},
      {"torch_dtype", "float32"},
  };
  return json.dump(2) + "\n";
}

}  // namespace muonlab::training
