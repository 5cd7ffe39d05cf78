#include "muonlab/distributed/rendezvous.h"

#include <fmt/ranges.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "muonlab/core/errors.h"

namespace muonlab::distributed {
namespace {

// Paths name the same files differently on different hosts.
const std::set<std::string> kHostLocalKeys = {"run.out_dir", "data.train", "data.val"};

// "section.key" -> value, in the file's order, from format_train_config's
// one-line-per-setting TOML.
std::vector<std::pair<std::string, std::string>> settings_of(const std::string& toml_text) {
  std::vector<std::pair<std::string, std::string>> settings;
  std::istringstream lines(toml_text);
  std::string line, section;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    const auto equals = line.find(" = ");
    if (equals == std::string::npos) continue;
    settings.emplace_back(section + "." + line.substr(0, equals), line.substr(equals + 3));
  }
  return settings;
}

std::string address_of(const DistEnv& env) { return fmt::format("{}:{}", env.master_addr, env.master_port); }

std::string what_of(const std::exception& error) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&error)) return c10_error->what_without_backtrace();
  return error.what();
}

std::string config_key(int64_t rank) { return fmt::format("muonlab/rank/{}/config", rank); }
std::string compared_key(int64_t rank) { return fmt::format("muonlab/rank/{}/compared", rank); }

std::string config_of_rank(c10d::Store& store, int64_t rank) {
  const std::vector<uint8_t> bytes = store.get(config_key(rank));
  return std::string(bytes.begin(), bytes.end());
}

using RankKey = std::string (*)(int64_t);

std::vector<int64_t> ranks_missing(c10d::Store& store, int64_t world_size, RankKey key_of) {
  std::vector<int64_t> missing;
  for (int64_t rank = 0; rank < world_size; ++rank) {
    if (!store.check({key_of(rank)})) missing.push_back(rank);
  }
  return missing;
}

// Until every rank has set its key_of(rank).
void wait_for_every_rank(c10d::Store& store, const DistEnv& env, std::chrono::milliseconds timeout, RankKey key_of) {
  std::vector<std::string> keys;
  for (int64_t rank = 0; rank < env.world_size; ++rank) keys.push_back(key_of(rank));
  try {
    store.wait(keys, timeout);
  } catch (const std::exception& error) {
    std::vector<int64_t> missing;
    try {
      missing = ranks_missing(store, env.world_size, key_of);
    } catch (const std::exception&) {
      fail("rank {} of {}: rank 0's rendezvous store at {} closed while this rank waited for the others to join "
           "({}); rank 0 stopped: its own error says why",
           env.rank, env.world_size, address_of(env), what_of(error));
    }
    fail("rank {} of {}: rank(s) {} did not join within {} s at {} (MASTER_ADDR:MASTER_PORT); start every rank "
         "with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE = {}, or raise distributed.timeout_s",
         env.rank, env.world_size, fmt::join(missing, ", "), timeout.count() / 1000.0,
         address_of(env), env.world_size);
  }
}

}  // namespace

std::optional<SettingDifference> first_setting_difference(const std::string& ours, const std::string& theirs) {
  const auto our_settings = settings_of(ours);
  const auto their_settings = settings_of(theirs);
  const auto value_in = [](const auto& settings, const std::string& key) -> std::string {
    for (const auto& [name, value] : settings) {
      if (name == key) return value;
    }
    return "(absent)";
  };
  for (const auto& [key, value] : our_settings) {
    if (kHostLocalKeys.count(key) != 0) continue;
    const std::string other = value_in(their_settings, key);
    if (other != value) return SettingDifference{key, value, other};
  }
  for (const auto& [key, value] : their_settings) {
    if (value_in(our_settings, key) == "(absent)") return SettingDifference{key, "(absent)", value};
  }
  return std::nullopt;
}

c10::intrusive_ptr<c10d::Store> rendezvous_store(const DistEnv& env, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(env.master_port);
  options.isServer = env.rank == 0;
  options.numWorkers = static_cast<size_t>(env.world_size);
  options.waitWorkers = false;  // check_in waits, naming the ranks that never come
  options.timeout = timeout;
  try {
    return tcp_store(env.master_addr, options);
  } catch (const std::exception& error) {
    if (env.rank == 0) {
      fail("rank 0 of {}: cannot serve the rendezvous store on port {} (MASTER_PORT): {}; another process may hold "
           "the port (a previous run still exiting, or another job): choose another MASTER_PORT",
           env.world_size, env.master_port, what_of(error));
    }
    fail("rank {} of {}: cannot reach rank 0's rendezvous store at {} (MASTER_ADDR:MASTER_PORT) within {} s: {}; "
         "check that rank 0 is running and that this machine resolves and reaches that address",
         env.rank, env.world_size, address_of(env), timeout.count() / 1000.0, what_of(error));
  }
}

void check_in(c10d::Store& store, const DistEnv& env, std::chrono::milliseconds timeout,
              const std::string& config_text) {
  store.set(config_key(env.rank), std::vector<uint8_t>(config_text.begin(), config_text.end()));
  wait_for_every_rank(store, env, timeout, config_key);
  // Rank 0 compares every rank's config with its own, the others theirs
  // with rank 0's: both sides of a difference fail, naming it.
  std::optional<std::pair<int64_t, SettingDifference>> difference;
  for (int64_t rank = env.rank == 0 ? 1 : 0; rank < (env.rank == 0 ? env.world_size : 1) && !difference; ++rank) {
    if (auto found = first_setting_difference(config_text, config_of_rank(store, rank))) {
      difference.emplace(rank, *found);
    }
  }
  // No rank leaves (closing rank 0's store) before every rank has read.
  store.set(compared_key(env.rank), std::vector<uint8_t>{1});
  try {
    wait_for_every_rank(store, env, timeout, compared_key);
  } catch (const Error&) {
    if (!difference) throw;  // else rank 0 may have closed the store, failing on the same difference
  }
  if (!difference) return;
  const auto& [other_rank, setting] = *difference;
  fail("rank {} of {}: rank {} was started with a different configuration: {} = {} on rank {}, {} on rank {}; "
       "start every rank with the same config and --set overrides",
       env.rank, env.world_size, other_rank, setting.key, setting.ours, env.rank, setting.theirs, other_rank);
}

}  // namespace muonlab::distributed
