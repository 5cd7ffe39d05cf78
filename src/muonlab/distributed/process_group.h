// Joining a group of training processes on PyTorch's distributed engine
// (c10d): who this process is, from the variables torchrun sets, and a
// process group over a store every rank can reach: Gloo for ranks on the CPU,
// NCCL for ranks on GPUs (one GPU per rank, cuda:LOCAL_RANK).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <c10/core/Device.h>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include "muonlab/distributed/collective_group.h"

namespace c10d {
struct TCPStoreOptions;  // <torch/csrc/distributed/c10d/TCPStore.hpp>, for those who make one
}  // namespace c10d

namespace muonlab::distributed {

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

// A TCPStore at `address`, served or joined as `options` say: over libuv
// where PyTorch has it (its default from 2.4), else over c10d's own socket
// loop, with the same protocol, where PyTorch was built without libuv.
c10::intrusive_ptr<c10d::Store> tcp_store(const std::string& address, c10d::TCPStoreOptions options);

// A client of the TCPStore rank 0 serves at MASTER_ADDR:MASTER_PORT, of its
// own (for RankWatch's thread); call after collective_group(env, ...).
c10::intrusive_ptr<c10d::Store> store_client(const DistEnv& env, std::chrono::milliseconds timeout);

// A NCCL group: every rank's tensors on its own GPU. Fails naming the gap
// where this build has no NCCL (nccl_built() is false: a LibTorch without
// NCCL, Debian's included, or CMake's MUONLAB_NCCL off).
c10::intrusive_ptr<compat::CollectiveGroup> nccl_group(const c10::intrusive_ptr<c10d::Store>& store, int64_t rank,
                                                       int64_t world_size, std::chrono::milliseconds timeout);
bool nccl_built();

// The device a rank trains on: `run_device` itself on the CPU or in one
// process; for "cuda" with several ranks, cuda:LOCAL_RANK (one GPU per rank,
// as torchrun arranges), failing when this machine has fewer GPUs (none:
// `gpus_here` = 0) or when the ranks would share one GPU (NCCL refuses that).
c10::Device rank_device(const std::string& run_device, const DistEnv& env, int64_t gpus_here);

// The store at MASTER_ADDR:MASTER_PORT, every rank checked in with
// `config_text` (the same on every rank, see rendezvous.h), then Gloo for
// CPU ranks or NCCL for GPU ranks.
c10::intrusive_ptr<compat::CollectiveGroup> collective_group(const DistEnv& env, const c10::Device& device,
                                                             std::chrono::milliseconds timeout,
                                                             const std::string& config_text);

}  // namespace muonlab::distributed
