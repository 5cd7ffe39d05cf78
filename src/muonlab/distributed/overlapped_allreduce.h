// Gradient all-reduce overlapped with the backward pass, as DDP does: a hook
// on each parameter copies its finished gradient into a flat bucket, and a
// bucket's all-reduce starts (asynchronously) as soon as all its gradients
// are in, while backward goes on computing earlier layers' gradients.
// Buckets hold parameters in reverse order (the order backward produces
// them) and start strictly in bucket order, so every rank issues the same
// collectives in the same order even when a parameter gets no gradient on
// some rank (an MoE expert no token chose): such buckets start in finish().
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "muonlab/core/torch_compat.h"

namespace muonlab::distributed {

class OverlappedAllReduce {
 public:
  OverlappedAllReduce(c10::intrusive_ptr<compat::CollectiveGroup> group, std::vector<torch::Tensor> params,
                      int64_t bucket_bytes);
  ~OverlappedAllReduce();  // removes the hooks
  OverlappedAllReduce(const OverlappedAllReduce&) = delete;
  OverlappedAllReduce& operator=(const OverlappedAllReduce&) = delete;

  // The next backward is the step's last micro-step: its hooks start the
  // all-reduces (earlier micro-steps only accumulate).
  void arm();
  // After that backward: starts the buckets not started yet, waits for all,
  // and leaves every parameter's .grad the mean over ranks.
  void finish();
  bool armed() const { return armed_; }

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into params_
    std::vector<int64_t> offsets;
    torch::Tensor buffer;
    int64_t ready = 0;
    std::function<void()> wait;  // set once started
  };
  void on_gradient(size_t param, const torch::Tensor& grad);
  void start_ready_buckets_in_order();
  void start(Bucket& bucket);

  c10::intrusive_ptr<compat::CollectiveGroup> group_;
  std::vector<torch::Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, size_t>> place_;  // per param: (bucket, member)
  std::vector<bool> filled_;                      // per param, this step
  std::vector<unsigned> hooks_;
  size_t next_to_start_ = 0;
  bool armed_ = false;
};

}  // namespace muonlab::distributed
