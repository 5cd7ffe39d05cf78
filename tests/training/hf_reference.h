// Hugging Face's computation, written from transformers' modeling_gpt2 and
// modeling_llama and the Hub's files, never from muonlab's code: the
// export and import tests check muonlab's layouts against these, so a
// layout mistake cannot be mirrored by the same mistake in the check.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace muonlab::training::hf_reference {

using Shape = std::vector<int64_t>;
using HfTensors = std::map<std::string, torch::Tensor>;

// Every tensor openai-community/gpt2's model.safetensors holds, with HF's
// shapes: Conv1D weights are [in, out].
inline std::map<std::string, Shape> hub_gpt2_shapes(int64_t vocab, int64_t positions, int64_t d, int64_t layers,
                                             int64_t inner) {
  std::map<std::string, Shape> shapes{{"wte.weight", {vocab, d}}, {"wpe.weight", {positions, d}},
                                      {"ln_f.weight", {d}},       {"ln_f.bias", {d}}};
  for (int64_t i = 0; i < layers; ++i) {
    const std::string h = "h." + std::to_string(i) + ".";
    for (const char* norm : {"ln_1", "ln_2"}) {
      shapes[h + norm + ".weight"] = {d};
      shapes[h + norm + ".bias"] = {d};
    }
    shapes[h + "attn.c_attn.weight"] = {d, 3 * d};
    shapes[h + "attn.c_attn.bias"] = {3 * d};
    shapes[h + "attn.c_proj.weight"] = {d, d};
    shapes[h + "attn.c_proj.bias"] = {d};
    shapes[h + "mlp.c_fc.weight"] = {d, inner};
    shapes[h + "mlp.c_fc.bias"] = {inner};
    shapes[h + "mlp.c_proj.weight"] = {inner, d};
    shapes[h + "mlp.c_proj.bias"] = {d};
  }
  return shapes;
}

// GPT2LMHeadModel's forward in eval mode (transformers' modeling_gpt2), from
// the exported tensors and config.json alone, in float64: Conv1D is x W + b;
// c_attn's output splits into q, k, v, each cut into contiguous heads; causal
// softmax of q k^T / sqrt(head_dim); gelu_new (or relu2: ReLU squared); LayerNorm with
// layer_norm_epsilon; the head is wte (tied). tokens: [T] int64.
inline torch::Tensor hf_gpt2_logits(const HfTensors& hf, const nlohmann::json& config, const torch::Tensor& tokens) {
  const auto w = [&](const std::string& name) { return hf.at(name).to(torch::kFloat64); };
  const double eps = config.at("layer_norm_epsilon").get<double>();
  const int64_t d = config.at("n_embd").get<int64_t>();
  const int64_t heads = config.at("n_head").get<int64_t>();
  const int64_t head_dim = d / heads;
  const int64_t T = tokens.size(0);
  const std::string activation = config.at("activation_function").get<std::string>();
  EXPECT_TRUE(activation == "gelu_new" || activation == "relu2") << activation;

  const auto layer_norm = [&](const torch::Tensor& x, const std::string& name) {
    const auto mean = x.mean(-1, /*keepdim=*/true);
    const auto var = (x - mean).pow(2).mean(-1, /*keepdim=*/true);
    return (x - mean) / torch::sqrt(var + eps) * w(name + ".weight") + w(name + ".bias");
  };
  const auto conv1d = [&](const torch::Tensor& x, const std::string& name) {
    return torch::matmul(x, w(name + ".weight")) + w(name + ".bias");
  };
  const auto act = [&](const torch::Tensor& x) {
    if (activation == "relu2") return torch::pow(torch::clamp_min(x, 0.0), 2);
    return 0.5 * x * (1.0 + torch::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * torch::pow(x, 3))));
  };
  const auto split_heads = [&](const torch::Tensor& x) { return x.view({T, heads, head_dim}).transpose(0, 1); };
  const auto causal = torch::ones({T, T}, torch::kBool).tril();

  auto x = w("wte.weight").index_select(0, tokens) + w("wpe.weight").slice(0, 0, T);
  for (int64_t i = 0; i < config.at("n_layer").get<int64_t>(); ++i) {
    const std::string h = "h." + std::to_string(i) + ".";
    const auto qkv = conv1d(layer_norm(x, h + "ln_1"), h + "attn.c_attn").split(d, -1);
    const auto q = split_heads(qkv[0]), k = split_heads(qkv[1]), v = split_heads(qkv[2]);
    const auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim));
    const auto attention = torch::softmax(scores.masked_fill(causal.logical_not(), -INFINITY), -1);
    const auto mixed = torch::matmul(attention, v).transpose(0, 1).reshape({T, d});
    x = x + conv1d(mixed, h + "attn.c_proj");
    x = x + conv1d(act(conv1d(layer_norm(x, h + "ln_2"), h + "mlp.c_fc")), h + "mlp.c_proj");
  }
  return torch::matmul(layer_norm(x, "ln_f"), w("wte.weight").t());
}

// LlamaForCausalLM's forward in eval mode (transformers' modeling_llama), from
// the exported tensors and config.json alone, in float64: RMSNorm x /
// sqrt(mean(x^2) + eps) times the gain; RoPE with inv_freq = 1 /
// theta^(2j/D) applied as q cos + rotate_half(q) sin, rotate_half(x) =
// (-x2, x1); GQA by repeating each k/v head for n_head / n_kv_head query
// heads; causal softmax of q k^T / sqrt(head_dim); down(silu(gate(x)) *
// up(x)); lm_head, or the embedding when tied. tokens: [T] int64.
inline torch::Tensor hf_llama_logits(const HfTensors& hf, const nlohmann::json& config, const torch::Tensor& tokens) {
  const auto w = [&](const std::string& name) { return hf.at(name).to(torch::kFloat64); };
  const double eps = config.at("rms_norm_eps").get<double>();
  const double theta = config.at("rope_theta").get<double>();
  const int64_t heads = config.at("num_attention_heads").get<int64_t>();
  const int64_t kv_heads = config.at("num_key_value_heads").get<int64_t>();
  const int64_t head_dim = config.at("hidden_size").get<int64_t>() / heads;
  const int64_t T = tokens.size(0);
  EXPECT_EQ(config.at("hidden_act"), "silu");

  const auto rms_norm = [&](const torch::Tensor& x, const std::string& name) {
    return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * w(name + ".weight");
  };
  const auto linear = [&](const torch::Tensor& x, const std::string& name) {
    return torch::matmul(x, w(name + ".weight").t());
  };
  const auto inv_freq = 1.0 / torch::pow(theta, torch::arange(0, head_dim, 2, torch::kFloat64) / head_dim);
  const auto freqs = torch::outer(torch::arange(T, torch::kFloat64), inv_freq);
  const auto emb = torch::cat({freqs, freqs}, -1);
  const auto cos = emb.cos(), sin = emb.sin();
  const auto rotate_half = [&](const torch::Tensor& x) {
    return torch::cat({-x.slice(-1, head_dim / 2), x.slice(-1, 0, head_dim / 2)}, -1);
  };
  const auto split_heads = [&](const torch::Tensor& x, int64_t n) { return x.view({T, n, head_dim}).transpose(0, 1); };
  const auto causal = torch::ones({T, T}, torch::kBool).tril();

  auto x = w("model.embed_tokens.weight").index_select(0, tokens);
  for (int64_t i = 0; i < config.at("num_hidden_layers").get<int64_t>(); ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    const auto h = rms_norm(x, l + "input_layernorm");
    auto q = split_heads(linear(h, l + "self_attn.q_proj"), heads);
    auto k = split_heads(linear(h, l + "self_attn.k_proj"), kv_heads);
    auto v = split_heads(linear(h, l + "self_attn.v_proj"), kv_heads);
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
    k = k.repeat_interleave(heads / kv_heads, 0);
    v = v.repeat_interleave(heads / kv_heads, 0);
    const auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim));
    const auto attention = torch::softmax(scores.masked_fill(causal.logical_not(), -INFINITY), -1);
    x = x + linear(torch::matmul(attention, v).transpose(0, 1).reshape({T, heads * head_dim}), l + "self_attn.o_proj");
    const auto g = rms_norm(x, l + "post_attention_layernorm");
    x = x + linear(torch::silu(linear(g, l + "mlp.gate_proj")) * linear(g, l + "mlp.up_proj"), l + "mlp.down_proj");
  }
  const auto head = config.at("tie_word_embeddings").get<bool>() ? w("model.embed_tokens.weight") : w("lm_head.weight");
  return torch::matmul(rms_norm(x, "model.norm"), head.t());
}

}  // namespace muonlab::training::hf_reference
