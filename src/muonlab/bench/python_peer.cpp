#include "muonlab/bench/python_peer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "muonlab/core/errors.h"
#include "muonlab/core/openmp_wait.h"
#include "muonlab/core/run_command.h"

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

PeerLookup find_python_peer(const std::string& script_name) {
  PeerLookup lookup;
  const std::string script =
      (std::filesystem::path(environment_or("MUONLAB_PEERS_DIR", MUONLAB_PEERS_DIR)) / script_name).string();
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

std::string describe(const PeerSetup& setup) {
  std::string command = fmt::format("{} {}", setup.python, setup.script);
  if (!setup.preload.empty()) command = fmt::format("LD_PRELOAD={} {}", setup.preload, command);
  // The peer inherits how this process's OpenMP threads wait
  // (core/openmp_wait.h), as it gets its allocator: say so.
  const std::vector<std::string> wait = openmp_wait_settings(std::getenv);
  return wait.empty() ? command : fmt::format("{} {}", fmt::join(wait, " "), command);
}

std::string run_python_peer(const PeerSetup& setup, const std::vector<std::string>& arguments) {
  // env(1) sets the child's LD_PRELOAD without a shell.
  std::vector<std::string> argv;
  if (!setup.preload.empty()) argv = {"env", "LD_PRELOAD=" + setup.preload};
  argv.insert(argv.end(), {setup.python, setup.script});
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  const CommandResult result = run_command(argv);
  if (!result.found || result.exit_status != 0) {
    fail("peer {} failed ({}): {}", setup.script, result.found ? fmt::format("exit {}", result.exit_status) : "not found",
         result.output);
  }
  // The result is the last JSON line; warnings may come before it.
  std::istringstream lines(result.output);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.front() == '{') last = line;
  }
  std::string allocator;
  try {
    allocator = nlohmann::json::parse(last).at("allocator").get<std::string>();
  } catch (const std::exception& e) {
    fail("peer {} printed no result ({}): {}", setup.script, e.what(), result.output);
  }
  // A preload that did not take (a wrong path only warns) would compare
  // allocators, not the work.
  const std::string expected = setup.preload.empty() ? "system" : "tcmalloc";
  if (allocator != expected) {
    fail("peer {} ran with the {} allocator, expected {} ({}): {}", setup.script, allocator, expected,
         describe(setup), result.output);
  }
  return last;
}

}  // namespace muonlab::bench
