// The worker pool runs a task on the asked number of threads, the same
// threads every time (that is what keeps per-thread caches warm), and
// reports a task's exception to the caller.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "muonlab/core/worker_pool.h"
#include "test_util.h"

namespace muonlab {
namespace {

std::set<std::thread::id> threads_of_run(WorkerPool& pool, int workers) {
  std::mutex mutex;
  std::set<std::thread::id> ids;
  std::atomic<int> arrived{0};
  pool.run(workers, [&] {
    // Hold every worker until all have arrived, so none can run twice.
    ++arrived;
    while (arrived.load() < std::min(workers, pool.max_workers())) std::this_thread::yield();
    std::lock_guard<std::mutex> lock(mutex);
    ids.insert(std::this_thread::get_id());
  });
  return ids;
}

TEST(WorkerPool, RunsOnTheSameThreadsEachTime) {
  WorkerPool pool(3);
  EXPECT_EQ(pool.max_workers(), 4);
  std::set<std::thread::id> first = threads_of_run(pool, 4);
  EXPECT_EQ(first.size(), 4u);
  EXPECT_EQ(first.count(std::this_thread::get_id()), 1u);  // the caller works too
  EXPECT_EQ(threads_of_run(pool, 4), first);
  EXPECT_EQ(threads_of_run(pool, 2).size(), 2u);
  EXPECT_EQ(threads_of_run(pool, 99).size(), 4u);  // clamped
  EXPECT_EQ(threads_of_run(pool, 0), std::set<std::thread::id>{std::this_thread::get_id()});
}

TEST(WorkerPool, RethrowsAWorkersException) {
  WorkerPool pool(2);
  std::atomic<int> calls{0};
  const std::thread::id caller = std::this_thread::get_id();
  auto throw_on_helpers = [&] {
    ++calls;
    if (std::this_thread::get_id() != caller) throw std::runtime_error("task failed");
  };
  EXPECT_CONTAINS(testing::error_message([&] { pool.run(3, throw_on_helpers); }), "task failed");
  EXPECT_EQ(calls.load(), 3);
  // The pool still works after a failed run.
  std::atomic<int> after{0};
  pool.run(3, [&] { ++after; });
  EXPECT_EQ(after.load(), 3);
}

}  // namespace
}  // namespace muonlab
