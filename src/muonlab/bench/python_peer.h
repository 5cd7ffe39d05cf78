// The Python peers the benchmarks compare themselves with (bench/peers/):
// plain PyTorch scripts that time the same work in a Python with torch, run
// as child processes with muonlab's allocator and OpenMP wait settings, each
// printing one JSON object as its last line.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace muonlab::bench {

// Where a peer can run: a Python that imports torch, and the script.
struct PeerSetup {
  std::string python;   // MUONLAB_PYTHON, else /usr/bin/python3, else python3
  std::string script;   // MUONLAB_PEERS_DIR/<script> (default: the source tree's bench/peers)
  std::string preload;  // a malloc library to LD_PRELOAD into the peer; "": the system's malloc
};

// The peer's command line as run_python_peer starts it, without the
// per-run arguments: "[LD_PRELOAD=lib ]python script".
std::string describe(const PeerSetup& setup);

// The setup, or why there is none ("no Python that imports torch: ...").
struct PeerLookup {
  std::optional<PeerSetup> setup;
  std::string missing;
};
PeerLookup find_python_peer(const std::string& script_name);

// Runs the script once with `arguments` and returns its result line (a JSON
// object); fails with its output when it exits with an error, prints no JSON
// line, or ran under another allocator than setup.preload (its "allocator").
std::string run_python_peer(const PeerSetup& setup, const std::vector<std::string>& arguments);

}  // namespace muonlab::bench
