#include "muonlab/bench/nanogpt_peer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <vector>

#include "muonlab/core/errors.h"
#include "muonlab/training/hf_gpt2_export.h"
#include "muonlab/training/hf_tensor_taker.h"

namespace muonlab::bench {

PeerLookup find_nanogpt_peer() { return find_python_peer("nanogpt_train.py"); }

std::string nanogpt_peer_difference(const models::ModelConfig& c) {
  // nanoGPT's block is GPT-2's: what Hugging Face's GPT-2 cannot hold, the
  // script cannot build either. It also fixes the MLP at 4 d with GELU (not
  // the ReLU squared GPT-2 can hold) and fuses q, k, v.
  std::vector<std::string> differences = training::hf_gpt2_incompatibilities(c);
  training::HfFieldCheck nanogpt("nanoGPT");
  nanogpt.need(c.mlp != models::MlpKind::kRelu2, "mlp", models::to_string(c.mlp), "gelu");
  nanogpt.need(c.dense_hidden() == 4 * c.d_model, "mlp_hidden", std::to_string(c.dense_hidden()),
               fmt::format("4 d_model = {}", 4 * c.d_model));
  nanogpt.need(c.fused_qkv, "fused_qkv", training::HfFieldCheck::text(c.fused_qkv), "true");
  differences.insert(differences.end(), nanogpt.problems().begin(), nanogpt.problems().end());
  return fmt::format("{}", fmt::join(differences, "; "));
}

PeerResult run_nanogpt_peer(const PeerSetup& setup, const models::ModelConfig& c, const PeerRequest& request) {
  const std::string line = run_python_peer(
      setup, {"--n-layer", std::to_string(c.n_layer), "--n-head", std::to_string(c.n_head),
              "--d-model", std::to_string(c.d_model), "--vocab-size", std::to_string(c.vocab_size),
              "--block-size", std::to_string(c.block_size), "--batch", std::to_string(request.batch),
              "--seq-len", std::to_string(request.seq_len), "--optimizer", request.optimizer,
              "--dtype", request.dtype, "--warmup", std::to_string(request.warmup),
              "--steps", std::to_string(request.steps), "--threads", std::to_string(request.threads),
              "--device", request.device});
  try {
    const auto json = nlohmann::json::parse(line);
    return {json.at("tokens_per_second").get<double>(), json.at("parameters").get<int64_t>(),
            json.at("allocator").get<std::string>()};
  } catch (const std::exception& e) {
    fail("peer {} printed an incomplete result ({}): {}", setup.script, e.what(), line);
  }
}

}  // namespace muonlab::bench
