// A two-layer GPT-2-shaped module with nanoGPT's parameter names, for tests
// that need a real set of named parameters (not a language model).
#pragma once

#include <torch/torch.h>

namespace muonlab::testing {

struct TinyBlockImpl : torch::nn::Module {
  explicit TinyBlockImpl(int64_t d)
      : ln_1(register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})))),
        c_attn(register_module("c_attn", torch::nn::Linear(d, 3 * d))),
        c_proj(register_module("c_proj", torch::nn::Linear(d, d))),
        ln_2(register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})))),
        c_fc(register_module("c_fc", torch::nn::Linear(d, 4 * d))),
        mlp_proj(register_module("mlp_proj", torch::nn::Linear(4 * d, d))) {}

  // Not attention: just enough mixing that every parameter gets a gradient.
  torch::Tensor forward(const torch::Tensor& x) {
    const auto qkv = c_attn->forward(ln_1->forward(x)).chunk(3, -1);
    auto h = x + c_proj->forward(torch::tanh(qkv[0] * qkv[1] + qkv[2]));
    return h + mlp_proj->forward(torch::gelu(c_fc->forward(ln_2->forward(h))));
  }

  torch::nn::LayerNorm ln_1;
  torch::nn::Linear c_attn, c_proj;
  torch::nn::LayerNorm ln_2;
  torch::nn::Linear c_fc, mlp_proj;
};
TORCH_MODULE(TinyBlock);

struct TinyModelImpl : torch::nn::Module {
  TinyModelImpl(int64_t vocab, int64_t d, int64_t context)
      : wte(register_module("wte", torch::nn::Embedding(vocab, d))),
        wpe(register_module("wpe", torch::nn::Embedding(context, d))),
        h0(register_module("h0", TinyBlock(d))),
        h1(register_module("h1", TinyBlock(d))),
        ln_f(register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})))),
        lm_head(register_module("lm_head",
                                torch::nn::Linear(torch::nn::LinearOptions(d, vocab).bias(false)))) {}

  torch::Tensor forward(const torch::Tensor& tokens) {
    const auto positions = torch::arange(tokens.size(1), torch::kLong);
    auto x = wte->forward(tokens) + wpe->forward(positions);
    x = h1->forward(h0->forward(x));
    return lm_head->forward(ln_f->forward(x));
  }

  // Cross-entropy of next-token prediction on a fixed random batch.
  torch::Tensor loss(const torch::Tensor& tokens) {
    const auto logits = forward(tokens.slice(1, 0, -1));
    return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                tokens.slice(1, 1).reshape({-1}));
  }

  torch::nn::Embedding wte, wpe;
  TinyBlock h0, h1;
  torch::nn::LayerNorm ln_f;
  torch::nn::Linear lm_head;
};
TORCH_MODULE(TinyModel);

// Seeded, in float64. tiny_batch() tokens fit any vocab >= 32.
inline TinyModel make_tiny_model(uint64_t seed, int64_t vocab = 32, int64_t d = 8) {
  torch::manual_seed(seed);
  TinyModel model(vocab, d, /*context=*/8);
  model->to(torch::kFloat64);
  return model;
}

inline torch::Tensor tiny_batch(uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 32, {4, 8}, torch::kLong);
}

}  // namespace muonlab::testing
