#include "muonlab/core/worker_pool.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "muonlab/core/threads.h"

namespace muonlab {

struct WorkerPool::State {
  std::mutex run_mutex;  // one run at a time
  std::mutex mutex;
  std::condition_variable wake;
  std::condition_variable finished_all;
  uint64_t generation = 0;  // bumped by each run, so helpers see new work
  int wanted = 0;           // helpers 0..wanted-1 take part in this run
  int finished = 0;
  const std::function<void()>* task = nullptr;
  std::exception_ptr error;
  bool stopping = false;
  std::vector<std::thread> helpers;

  void record(std::exception_ptr thrown) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!error) error = thrown;
  }

  void helper_loop(int index) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex);
    while (true) {
      wake.wait(lock, [&] { return stopping || generation != seen; });
      if (stopping) return;
      seen = generation;
      if (index >= wanted) continue;
      const std::function<void()>* current = task;
      lock.unlock();
      try {
        (*current)();
      } catch (...) {
        record(std::current_exception());
      }
      lock.lock();
      if (++finished == wanted) finished_all.notify_all();
    }
  }
};

WorkerPool::WorkerPool(int helpers) : state_(std::make_unique<State>()) {
  for (int i = 0; i < std::max(0, helpers); ++i) {
    state_->helpers.emplace_back([state = state_.get(), i] { state->helper_loop(i); });
  }
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  for (auto& helper : state_->helpers) helper.join();
}

int WorkerPool::max_workers() const { return static_cast<int>(state_->helpers.size()) + 1; }

void WorkerPool::run(int workers, const std::function<void()>& task) {
  std::lock_guard<std::mutex> one_run(state_->run_mutex);
  const int helpers = std::clamp(workers, 1, max_workers()) - 1;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->task = &task;
    state_->wanted = helpers;
    state_->finished = 0;
    state_->error = nullptr;
    ++state_->generation;
  }
  state_->wake.notify_all();
  try {
    task();
  } catch (...) {
    state_->record(std::current_exception());
  }
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->finished_all.wait(lock, [&] { return state_->finished == state_->wanted; });
  if (state_->error) std::rethrow_exception(state_->error);
}

WorkerPool& WorkerPool::shared() {
  static WorkerPool pool(core_count() - 1);
  return pool;
}

}  // namespace muonlab
