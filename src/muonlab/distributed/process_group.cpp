// After the precompiled header: PyTorch 2.x's CMake defines this; Debian's
// 1.13 has Gloo built in but leaves the header's switch to the user.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif

#include "muonlab/distributed/process_group.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <string>

#include "muonlab/core/errors.h"
#include "muonlab/distributed/rendezvous.h"

namespace muonlab::distributed {

namespace {

int64_t integer_variable(const char* name, const char* value) {
  try {
    size_t used = 0;
    const int64_t number = std::stoll(value, &used);
    if (used == std::string(value).size()) return number;
  } catch (const std::exception&) {
  }
  fail("environment variable {}='{}': expected an integer", name, value);
}

}  // namespace

DistEnv dist_env_from_environment(const std::function<const char*(const char*)>& lookup) {
  const auto get = [&](const char* name) -> const char* {
    const char* value = lookup ? lookup(name) : std::getenv(name);
    return value != nullptr && *value != '\0' ? value : nullptr;
  };
  DistEnv env;
  const char* world_size = get("WORLD_SIZE");
  const char* rank = get("RANK");
  if (world_size == nullptr && rank == nullptr) return env;
  if (world_size == nullptr || rank == nullptr) {
    fail("environment: {} is set but {} is not; a launcher (torchrun, muonlab launch) sets both",
         world_size ? "WORLD_SIZE" : "RANK", world_size ? "RANK" : "WORLD_SIZE");
  }
  env.world_size = integer_variable("WORLD_SIZE", world_size);
  env.rank = integer_variable("RANK", rank);
  if (env.world_size < 1) fail("environment variable WORLD_SIZE={}: expected 1 or more", env.world_size);
  if (env.rank < 0 || env.rank >= env.world_size) {
    fail("environment variable RANK={}: expected 0 to WORLD_SIZE - 1 = {}", env.rank, env.world_size - 1);
  }
  if (const char* local_rank = get("LOCAL_RANK")) env.local_rank = integer_variable("LOCAL_RANK", local_rank);
  if (const char* addr = get("MASTER_ADDR")) env.master_addr = addr;
  if (const char* port = get("MASTER_PORT")) env.master_port = integer_variable("MASTER_PORT", port);
  if (env.master_port < 1 || env.master_port > 65535) {
    fail("environment variable MASTER_PORT={}: expected a port in 1..65535", env.master_port);
  }
  return env;
}

c10::intrusive_ptr<compat::CollectiveGroup> gloo_group(const c10::intrusive_ptr<c10d::Store>& store, int64_t rank,
                                                       int64_t world_size, std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create();
  options->timeout = timeout;
  // GLOO_SOCKET_IFNAME names the interface as in PyTorch (needed where the
  // host name does not resolve to the address the other hosts reach);
  // otherwise Gloo picks the host name's address, or loopback.
  const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
  options->devices.push_back(interface != nullptr && *interface != '\0'
                                 ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                 : c10d::ProcessGroupGloo::createDefaultDevice());
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(rank), static_cast<int>(world_size),
                                                     options);
}

c10::intrusive_ptr<c10d::Store> tcp_store(const std::string& address, c10d::TCPStoreOptions options) {
  try {
    return c10::make_intrusive<c10d::TCPStore>(address, options);
  } catch (const std::exception& refusal) {
    if (!compat::turn_off_missing_libuv(options, refusal)) throw;
    return c10::make_intrusive<c10d::TCPStore>(address, options);
  }
}

c10::intrusive_ptr<c10d::Store> store_client(const DistEnv& env, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(env.master_port);
  options.isServer = false;
  options.waitWorkers = false;
  options.timeout = timeout;
  return tcp_store(env.master_addr, options);
}

#ifndef MUONLAB_WITH_NCCL
c10::intrusive_ptr<compat::CollectiveGroup> nccl_group(const c10::intrusive_ptr<c10d::Store>&, int64_t rank,
                                                       int64_t world_size, std::chrono::milliseconds) {
  fail("rank {} of {}: training on GPUs across ranks needs NCCL, and this muonlab was built without it "
       "(its LibTorch has no NCCL, as Debian's has not, or CMake's MUONLAB_NCCL is OFF); build against a CUDA "
       "PyTorch 2.x, or train the ranks on the CPU (run.device = \"cpu\", c10d Gloo)",
       rank, world_size);
}

bool nccl_built() { return false; }
#endif

c10::Device rank_device(const std::string& run_device, const DistEnv& env, int64_t gpus_here) {
  const c10::Device device(run_device);
  if (device.is_cuda() && gpus_here == 0) {
    fail("run.device = \"{}\": LibTorch sees no CUDA GPU on this machine; set run.device = \"cpu\" or train on "
         "a machine with a GPU", run_device);
  }
  if (device.is_cuda() && device.has_index() && device.index() >= gpus_here) {
    fail("run.device = \"{}\": this machine has {} GPU(s), cuda:0 to cuda:{}", run_device, gpus_here, gpus_here - 1);
  }
  if (!device.is_cuda() || !env.distributed()) return device;
  if (device.has_index()) {
    fail("run.device = \"{}\" with {} ranks: name \"cuda\" and each rank takes cuda:LOCAL_RANK "
         "(NCCL needs one GPU per rank)", run_device, env.world_size);
  }
  if (env.local_rank >= gpus_here) {
    fail("rank {} of {}: LOCAL_RANK={} needs GPU cuda:{}, and this machine has {} GPU(s); start at most one rank "
         "per GPU on each machine (NCCL refuses two ranks on one GPU)",
         env.rank, env.world_size, env.local_rank, env.local_rank, gpus_here);
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
}

c10::intrusive_ptr<compat::CollectiveGroup> collective_group(const DistEnv& env, const c10::Device& device,
                                                             std::chrono::milliseconds timeout,
                                                             const std::string& config_text) {
  auto store = rendezvous_store(env, timeout);
  check_in(*store, env, timeout, config_text);
  if (device.is_cuda()) return nccl_group(store, env.rank, env.world_size, timeout);
  return gloo_group(store, env.rank, env.world_size, timeout);
}

}  // namespace muonlab::distributed
