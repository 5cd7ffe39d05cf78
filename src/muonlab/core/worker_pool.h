// A fixed set of threads that lives as long as the process, so per-thread
// state (the GPT-2 tokenizer's merge cache) stays warm from one parallel call
// to the next, instead of starting cold in freshly created threads.
#pragma once

#include <functional>
#include <memory>

namespace muonlab {

class WorkerPool {
 public:
  // `helpers` threads; the caller of run() works beside them.
  explicit WorkerPool(int helpers);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // The most threads a run can use: the helpers and the caller.
  int max_workers() const;

  // Runs `task` on `workers` threads at once (clamped to [1, max_workers()]),
  // the calling thread included, and returns when all have finished; then
  // rethrows the first exception any of them threw. Calls are serialized; a
  // task must not call run() on the same pool.
  void run(int workers, const std::function<void()>& task);

  // One helper per core but the caller's, started on first use.
  static WorkerPool& shared();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace muonlab
