#include "muonlab/bench/nanogpt_peer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <vector>

#include "muonlab/core/errors.h"
#include "muonlab/core/openmp_wait.h"
#include "muonlab/core/run_command.h"
#include "muonlab/training/hf_gpt2_export.h"
#include "muonlab/training/hf_tensor_taker.h"

#ifndef MUONLAB_PEERS_DIR
#define MUONLAB_PEERS_DIR "bench/peers"
#endif

namespace muonlab::bench {

namespace {

std::string environment_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : fallback;
}

bool imports_torch(const std::string& python) {
  const CommandResult result = run_command({python, "-c", "import torch"});
  return result.found && result.exit_status == 0;
}

// `python3` on PATH may be an interpreter without torch (Debian's torch is
// for /usr/bin/python3), so that one is tried first.
std::optional<std::string> python_with_torch(std::string& tried) {
  std::vector<std::string> candidates;
  if (const char* chosen = std::getenv("MUONLAB_PYTHON"); chosen && *chosen) {
    candidates = {chosen};
  } else {
    candidates = {"/usr/bin/python3", "python3"};
  }
  for (const auto& python : candidates) {
    if (imports_torch(python)) return python;
    tried += (tried.empty() ? "" : ", ") + python;
  }
  return std::nullopt;
}

}  // namespace

PeerLookup find_nanogpt_peer() {
  PeerLookup lookup;
  const std::string script =
      (std::filesystem::path(environment_or("MUONLAB_PEERS_DIR", MUONLAB_PEERS_DIR)) / "nanogpt_train.py").string();
  if (!std::filesystem::exists(script)) {
    lookup.missing = fmt::format("{} not found (set MUONLAB_PEERS_DIR to the folder holding it)", script);
    return lookup;
  }
  std::string tried;
  const auto python = python_with_torch(tried);
  if (!python) {
    lookup.missing = fmt::format("no Python that imports torch (tried {}; set MUONLAB_PYTHON)", tried);
    return lookup;
  }
  lookup.setup = PeerSetup{*python, script};
  return lookup;
}

std::string nanogpt_peer_difference(const models::ModelConfig& c) {
  // nanoGPT's block is GPT-2's: what Hugging Face's GPT-2 cannot hold, the
  // script cannot build either. It also fixes the MLP at 4 d and fuses q, k, v.
  std::vector<std::string> differences = training::hf_gpt2_incompatibilities(c);
  training::HfFieldCheck nanogpt("nanoGPT");
  nanogpt.need(c.dense_hidden() == 4 * c.d_model, "mlp_hidden", std::to_string(c.dense_hidden()),
               fmt::format("4 d_model = {}", 4 * c.d_model));
  nanogpt.need(c.fused_qkv, "fused_qkv", training::HfFieldCheck::text(c.fused_qkv), "true");
  differences.insert(differences.end(), nanogpt.problems().begin(), nanogpt.problems().end());
  return fmt::format("{}", fmt::join(differences, "; "));
}

std::string describe(const PeerSetup& setup) {
  std::string command = fmt::format("{} {}", setup.python, setup.script);
  if (!setup.preload.empty()) command = fmt::format("LD_PRELOAD={} {}", setup.preload, command);
  // The peer inherits how this process's OpenMP threads wait
  // (core/openmp_wait.h), as it gets its allocator: say so.
  const std::vector<std::string> wait = openmp_wait_settings(std::getenv);
  return wait.empty() ? command : fmt::format("{} {}", fmt::join(wait, " "), command);
}

PeerResult run_nanogpt_peer(const PeerSetup& setup, const models::ModelConfig& c, const PeerRequest& request) {
  // env(1) sets the child's LD_PRELOAD without a shell.
  std::vector<std::string> argv;
  if (!setup.preload.empty()) argv = {"env", "LD_PRELOAD=" + setup.preload};
  argv.insert(argv.end(), {
      setup.python, setup.script,
      "--n-layer", std::to_string(c.n_layer), "--n-head", std::to_string(c.n_head),
      "--d-model", std::to_string(c.d_model), "--vocab-size", std::to_string(c.vocab_size),
      "--block-size", std::to_string(c.block_size), "--batch", std::to_string(request.batch),
      "--seq-len", std::to_string(request.seq_len), "--optimizer", request.optimizer,
      "--dtype", request.dtype, "--warmup", std::to_string(request.warmup),
      "--steps", std::to_string(request.steps), "--threads", std::to_string(request.threads)});
  const CommandResult result = run_command(argv);
  if (!result.found || result.exit_status != 0) {
    fail("peer {} failed ({}): {}", setup.script, result.found ? fmt::format("exit {}", result.exit_status) : "not found",
         result.output);
  }
  // The result is the last line; warnings may come before it.
  std::istringstream lines(result.output);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.front() == '{') last = line;
  }
  PeerResult peer;
  try {
    const auto json = nlohmann::json::parse(last);
    peer = {json.at("tokens_per_second").get<double>(), json.at("parameters").get<int64_t>(),
            json.at("allocator").get<std::string>()};
  } catch (const std::exception& e) {
    fail("peer {} printed no result ({}): {}", setup.script, e.what(), result.output);
  }
  // A preload that did not take (a wrong path only warns) would compare
  // allocators, not training loops.
  const std::string expected = setup.preload.empty() ? "system" : "tcmalloc";
  if (peer.allocator != expected) {
    fail("peer {} ran with the {} allocator, expected {} ({}): {}", setup.script, peer.allocator, expected,
         describe(setup), result.output);
  }
  return peer;
}

}  // namespace muonlab::bench
