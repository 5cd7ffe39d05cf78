#include "muonlab/models/generate.h"

#include <cmath>

#include "muonlab/core/errors.h"
#include "muonlab/models/kv_cache.h"

namespace muonlab::models {

void SamplingOptions::validate() const {
  if (max_new_tokens < 0) fail("sampling: max_new_tokens = {}: expected 0 or more", max_new_tokens);
  if (!(temperature >= 0) || !std::isfinite(temperature)) {
    fail("sampling: temperature = {}: expected 0 (greedy) or a finite positive number", temperature);
  }
  if (top_k < 0) fail("sampling: top_k = {}: expected 0 (off) or positive", top_k);
  if (!(top_p > 0 && top_p <= 1)) fail("sampling: top_p = {}: expected a value in (0, 1]", top_p);
  if (stop_token && *stop_token < 0) fail("sampling: stop_token = {}: expected a token id (0 or more)", *stop_token);
}

torch::Tensor sampling_distribution(const torch::Tensor& logits, const SamplingOptions& options) {
  const double temperature = options.temperature > 0 ? options.temperature : 1.0;
  auto probs = torch::softmax(logits.to(torch::kCPU, torch::kFloat64) / temperature, -1);
  const auto [sorted, order] = probs.sort(/*dim=*/-1, /*descending=*/true);
  const int64_t vocab = probs.size(0);
  int64_t keep = options.top_k > 0 ? std::min(options.top_k, vocab) : vocab;
  if (options.top_p < 1.0) {
    // Smallest prefix of the sorted probabilities whose mass reaches top_p.
    const auto mass_before = sorted.cumsum(0) - sorted;
    const int64_t nucleus = (mass_before < options.top_p).sum().item<int64_t>();
    keep = std::min(keep, std::max<int64_t>(nucleus, 1));
  }
  auto cut = torch::zeros_like(probs);
  cut.index_put_({order.narrow(0, 0, keep)}, sorted.narrow(0, 0, keep));
  return cut / cut.sum();
}

int64_t sample_next_token(const torch::Tensor& logits, const SamplingOptions& options,
                          std::mt19937_64& rng) {
  if (options.temperature == 0) return logits.argmax().item<int64_t>();
  const auto probs = sampling_distribution(logits, options).contiguous();
  const auto* p = probs.data_ptr<double>();
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  double cumulative = 0;
  int64_t last_possible = 0;
  for (int64_t i = 0; i < probs.size(0); ++i) {
    if (p[i] <= 0) continue;
    last_possible = i;
    cumulative += p[i];
    if (u < cumulative) return i;
  }
  return last_possible;  // u landed in the rounding gap at the top
}

void check_generation(const ModelConfig& config, const std::vector<int64_t>& prompt, const SamplingOptions& options) {
  options.validate();
  if (prompt.empty()) fail("generate: the prompt is empty; give at least one token");
  if (const auto outside = config.first_id_outside_vocabulary(prompt)) {
    fail("generate: prompt token {} is outside the vocabulary [0, {})", *outside, config.vocab_size);
  }
  if (options.stop_token && *options.stop_token >= config.vocab_size) {
    fail("generate: stop token {} is outside the vocabulary [0, {})", *options.stop_token, config.vocab_size);
  }
}

std::vector<int64_t> generate(Transformer& model, const std::vector<int64_t>& prompt,
                              const SamplingOptions& options, const TokenCallback& on_token) {
  check_generation(model->config(), prompt, options);
  const auto& config = model->config();
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();

  const auto weight = model->parameters().front();
  const auto ids_options = torch::dtype(torch::kInt64).device(weight.device());
  const auto total = static_cast<size_t>(prompt.size() + options.max_new_tokens);
  const auto block_size = static_cast<size_t>(config.block_size);
  // The cache holds at most block_size positions; past them each token is
  // predicted from the last block_size tokens, recomputed (nanoGPT's crop).
  std::optional<KvCache> cache;
  if (options.use_cache && prompt.size() < block_size) {
    cache.emplace(config, 1, static_cast<int64_t>(std::min(total, block_size)), weight.options());
  }
  const auto window = [&](const std::vector<int64_t>& tokens) {
    const size_t start = tokens.size() > block_size ? tokens.size() - block_size : 0;
    return torch::tensor(std::vector<int64_t>(tokens.begin() + static_cast<std::ptrdiff_t>(start), tokens.end()),
                         ids_options)
        .unsqueeze(0);
  };

  std::vector<int64_t> tokens = prompt;
  std::mt19937_64 rng(options.seed);
  auto input = window(tokens);
  while (tokens.size() < total) {
    const auto logits = model->forward(input, cache ? &*cache : nullptr).logits;
    const int64_t next = sample_next_token(logits[0][-1], options, rng);
    tokens.push_back(next);
    if (on_token) on_token(next);
    if (next == options.stop_token) break;
    if (cache && tokens.size() > block_size) cache.reset();
    input = cache ? torch::tensor({next}, ids_options).unsqueeze(0) : window(tokens);
  }
  model->train(was_training);
  return tokens;
}

}  // namespace muonlab::models
