// Every rank checks in before training: each publishes its resolved config
// in the store, waits for the others (naming the ranks that never joined,
// and the address they were expected at), and rank 0 compares every rank's
// config with its own, so ranks started with different settings fail naming
// the first setting that differs instead of blaming each other later as
// "not answering".
#pragma once

#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <optional>
#include <string>

#include "muonlab/distributed/process_group.h"

namespace muonlab::distributed {

// A setting two configs give different values: "section.key", and each's
// value ("(absent)" where one lacks the key).
struct SettingDifference {
  std::string key;
  std::string ours;
  std::string theirs;
};

// The first setting (in `ours`' order) that differs between two configs in
// the resolved TOML form of format_train_config, ignoring the keys that may
// differ between hosts (paths: run.out_dir, data.train, data.val).
std::optional<SettingDifference> first_setting_difference(const std::string& ours, const std::string& theirs);

// The TCPStore rank 0 serves at MASTER_ADDR:MASTER_PORT, every rank a
// client; a port that cannot be served or an address that cannot be
// reached within `timeout` fail naming host:port and the variables.
c10::intrusive_ptr<c10d::Store> rendezvous_store(const DistEnv& env, std::chrono::milliseconds timeout);

// Publishes `config_text` as this rank's, waits up to `timeout` for every
// rank's, and (rank 0, and each rank against rank 0's) fails naming the
// ranks missing or the first differing setting.
void check_in(c10d::Store& store, const DistEnv& env, std::chrono::milliseconds timeout,
              const std::string& config_text);

}  // namespace muonlab::distributed
