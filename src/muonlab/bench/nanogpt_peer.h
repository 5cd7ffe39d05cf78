// The peer `bench train` compares itself with: bench/peers/nanogpt_train.py,
// a nanoGPT-style PyTorch loop (Keller Jordan's Muon or AdamW) timing the
// same steps on the same model, batch and threads, in a Python with torch.
#pragma once

#include <string>

#include "muonlab/bench/python_peer.h"
#include "muonlab/models/model_config.h"

namespace muonlab::bench {

// Where it can run (python_peer.h), or why not.
PeerLookup find_nanogpt_peer();

// Whether the script builds this model: nanoGPT's GPT-2 block only (MHA,
// LayerNorm, learned positions, GELU of 4d, fused c_attn, biases, tied head).
// Otherwise returns what differs ("'norm' = rmsnorm (GPT-2 needs
// layernorm); ..."); "" when covered.
std::string nanogpt_peer_difference(const models::ModelConfig& config);

struct PeerRequest {
  int64_t batch = 0;
  int64_t seq_len = 0;
  std::string optimizer;  // "muon" or "adamw"
  std::string dtype;      // "fp32" or "bf16"
  int warmup = 1;
  int steps = 3;
  int threads = 1;        // CPU threads (0: torch's default)
  std::string device = "cpu";  // "cpu" or "cuda"
};

struct PeerResult {
  double tokens_per_second = 0;
  int64_t parameters = 0;  // the peer model's, to check it is the same model
  std::string allocator;   // what the peer's process allocates with: "tcmalloc" or "system"
};

// Runs the script once; fails with its output when it exits with an error,
// prints no result, or runs under another allocator than setup.preload.
PeerResult run_nanogpt_peer(const PeerSetup& setup, const models::ModelConfig& config, const PeerRequest& request);

}  // namespace muonlab::bench
