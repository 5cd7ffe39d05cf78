// Joining a group of training processes on PyTorch's distributed engine
// (c10d): who this process is, from the variables torchrun sets, and a Gloo
// process group (CPU collectives) over a store every rank can reach.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include "muonlab/core/torch_compat.h"
#if MUONLAB_TORCH_AT_LEAST(2, 0)
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif

namespace muonlab::training {

// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.
struct DistEnv {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;

  bool distributed() const { return world_size > 1; }
};

// From the environment (or `lookup`, for tests). None of the variables set:
// one process. WORLD_SIZE set without RANK, a rank outside [0, WORLD_SIZE),
// a port outside [1, 65535] or a value that is not a number fail naming the
// variable and its value.
DistEnv dist_env_from_environment(const std::function<const char*(const char*)>& lookup = nullptr);

// A Gloo group of `world_size` ranks joined through `store` (a TCPStore
// across processes, a HashStore across threads of one process); collectives
// that wait longer than `timeout` fail instead of hanging.
c10::intrusive_ptr<compat::CollectiveGroup> gloo_group(const c10::intrusive_ptr<c10d::Store>& store, int64_t rank,
                                                       int64_t world_size, std::chrono::milliseconds timeout);

// A client of the TCPStore rank 0 serves at MASTER_ADDR:MASTER_PORT, of its
// own (for RankWatch's thread); call after gloo_group(env, ...).
c10::intrusive_ptr<c10d::Store> store_client(const DistEnv& env, std::chrono::milliseconds timeout);

// The TCPStore at MASTER_ADDR:MASTER_PORT (rank 0 serves it), then the Gloo
// group over it.
c10::intrusive_ptr<compat::CollectiveGroup> gloo_group(const DistEnv& env, std::chrono::milliseconds timeout);

}  // namespace muonlab::training
