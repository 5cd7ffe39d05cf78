#include "muonlab/distributed/rank_watch.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <vector>

namespace muonlab::distributed {

RankWatch::RankWatch(c10::intrusive_ptr<c10d::Store> store, int64_t rank, int64_t world_size,
                     std::chrono::milliseconds beat)
    : store_(std::move(store)), rank_(rank), world_size_(world_size), beat_(beat) {
  store_->set(key(rank_), std::vector<uint8_t>{'0'});
  thread_ = std::thread([this] { beat_until_stopped(); });
}

RankWatch::~RankWatch() { stop_beating(); }

std::string RankWatch::key(int64_t rank) const { return fmt::format("muonlab/heartbeat/{}", rank); }

void RankWatch::beat_until_stopped() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (uint64_t count = 1; !stopping_; ++count) {
    const std::string text = std::to_string(count);
    try {
      store_->set(key(rank_), std::vector<uint8_t>(text.begin(), text.end()));
    } catch (const std::exception&) {
      return;  // the store is gone (rank 0 ended); the main thread will say so
    }
    wake_.wait_for(lock, beat_, [this] { return stopping_; });
  }
}

void RankWatch::stop_beating() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string RankWatch::silent_ranks() {
  stop_beating();  // the store client is this thread's from here on
  auto read_counters = [&] {
    std::map<int64_t, std::string> counters;
    for (int64_t r = 0; r < world_size_; ++r) {
      if (r == rank_) continue;
      if (!store_->check({key(r)})) {
        counters[r] = "";
        continue;
      }
      const auto bytes = store_->get(key(r));
      counters[r] = std::string(bytes.begin(), bytes.end());
    }
    return counters;
  };
  try {
    const auto before = read_counters();
    const auto watched = 4 * beat_;
    std::this_thread::sleep_for(watched);
    const auto after = read_counters();
    std::vector<std::string> silent;
    for (const auto& [r, count] : after) {
      if (count.empty()) {
        silent.push_back(fmt::format("rank {} (never joined)", r));
      } else if (count == before.at(r)) {
        silent.push_back(fmt::format("rank {} (no heartbeat for {:.1f} s)", r,
                                     std::chrono::duration<double>(watched).count()));
      }
    }
    return fmt::format("{}", fmt::join(silent, ", "));
  } catch (const std::exception& error) {
    if (rank_ == 0) return "";
    std::string what = error.what();
    return fmt::format("rank 0 (its store is unreachable: {})", what.substr(0, what.find('\n')));
  }
}

}  // namespace muonlab::distributed
