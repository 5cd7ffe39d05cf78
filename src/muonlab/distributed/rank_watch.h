// Who stopped answering. Every rank counts heartbeats into the group's
// store from a thread of its own; when a collective fails or times out, the
// survivors read the counters twice, a few beats apart, and name the ranks
// whose counter stood still (dead, hung, or stopped by a debugger). Gloo's
// own error names only a socket; this names the rank.
#pragma once

#include <torch/csrc/distributed/c10d/Store.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace muonlab::distributed {

class RankWatch {
 public:
  // `store`: a client of the group's store for this watch alone (stores are
  // not shared across threads here).
  RankWatch(c10::intrusive_ptr<c10d::Store> store, int64_t rank, int64_t world_size,
            std::chrono::milliseconds beat = std::chrono::milliseconds(500));
  ~RankWatch();
  RankWatch(const RankWatch&) = delete;
  RankWatch& operator=(const RankWatch&) = delete;

  // Stops this rank's heartbeats, watches the others for a few beats, and
  // says which ranks are silent: "rank 1 (no heartbeat for 2.0 s)", "rank 0
  // (its store is unreachable: ...)", or "" when every rank still beats.
  std::string silent_ranks();

 private:
  void beat_until_stopped();
  void stop_beating();
  std::string key(int64_t rank) const;

  c10::intrusive_ptr<c10d::Store> store_;
  int64_t rank_;
  int64_t world_size_;
  std::chrono::milliseconds beat_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace muonlab::distributed
