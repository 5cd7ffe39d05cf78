// Autoregressive text generation with a KV cache: greedy, temperature,
// top-k and top-p (nucleus) sampling, reproducible from a seed.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <vector>

#include "muonlab/models/transformer.h"

namespace muonlab::models {

struct SamplingOptions {
  int64_t max_new_tokens = 32;
  double temperature = 1.0;  // 0: greedy (argmax)
  int64_t top_k = 0;         // 0: no top-k cut
  double top_p = 1.0;        // 1: no nucleus cut
  uint64_t seed = 0;
  bool use_cache = true;     // false: recompute the whole prefix every step
  // Stop once this id is sampled (it ends the output), as Hugging Face's
  // generate stops at eos_token_id; typically <|endoftext|>. Unset: always
  // max_new_tokens, as nanoGPT samples.
  std::optional<int64_t> stop_token;
  void validate() const;
};

// The prompt followed by max_new_tokens sampled tokens (fewer where the
// stop token came first; a stop token inside the prompt does not stop). Each token is
// predicted from at most the last block_size tokens (a longer prompt or
// sample slides the window, as nanoGPT crops), with the KV cache while the
// whole sequence fits. Runs without gradients, in eval mode. `on_token`, if
// given, is called with each new token as soon as it is sampled (the stop
// token included), so that a caller can show the sample as it grows.
using TokenCallback = std::function<void(int64_t)>;
std::vector<int64_t> generate(Transformer& model, const std::vector<int64_t>& prompt,
                              const SamplingOptions& options, const TokenCallback& on_token = nullptr);

// What generate refuses before it samples anything: bad options, an empty
// prompt, prompt or stop ids outside the model's vocabulary.
void check_generation(const ModelConfig& config, const std::vector<int64_t>& prompt, const SamplingOptions& options);

// The probabilities sampling draws from, given next-token logits [V]:
// softmax(logits / T), cut to the top_k most likely, then to the smallest
// set whose mass reaches top_p, renormalized. Float64, on the CPU.
torch::Tensor sampling_distribution(const torch::Tensor& logits, const SamplingOptions& options);

// One token from next-token logits [V]: argmax when temperature is 0, else a
// draw from sampling_distribution by inverse CDF with `rng`.
int64_t sample_next_token(const torch::Tensor& logits, const SamplingOptions& options,
                          std::mt19937_64& rng);

}  // namespace muonlab::models
