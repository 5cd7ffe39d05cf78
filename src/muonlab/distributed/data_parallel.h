// One training process's part in data-parallel training over a c10d group:
// every rank runs forward and backward on its share of the global batch,
// then the gradients become the mean over ranks and every rank takes the
// step one process would take on the whole batch.
//
// With distributed Muon (shard_muon) the work of Muon's matrices is split
// ZeRO-1 style (muon_shards.h): their gradients are reduce-scattered to the
// rank that owns each matrix (all-to-all of equal chunks, then a local sum:
// Gloo has no reduce-scatter), the owner alone runs momentum, second moment
// and Newton-Schulz and keeps that state, and the updated matrices are
// all-gathered. Everything else (AdamW's parameters) is all-reduced in
// buckets; with shard_adamw each AdamW parameter is stepped by one owner,
// which alone keeps its two moments (ZeRO-1 for AdamW: for models with
// large embeddings most of the optimizer memory), and the updated
// parameters are all-gathered. Per step each rank sends
//   all-reduce (ring):         2 (N-1)/N x the bytes of every gradient
//   distributed Muon:          (N-1)/N x Muon's padded buffer, twice (gradients
//                              out, matrices back), + the all-reduce of the rest
//   sharded AdamW:             + (N-1)/N x AdamW's padded buffer (all-gather)
// with the NS work and the optimizers' state divided by N (docs/design.md).
//
// Every collective runs under the group's timeout; one that fails (a rank
// died, or hangs) throws muonlab::Error naming this rank, the collective and
// the step, and the ranks that stopped answering (rank_watch.h).
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "muonlab/core/torch_compat.h"
#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/muon.h"
#include "muonlab/distributed/muon_shards.h"

namespace muonlab::distributed {

class OverlappedAllReduce;
class RankWatch;

struct DataParallelOptions {
  bool shard_muon = true;
  bool shard_adamw = true;  // each AdamW parameter stepped, and its moments kept, by one rank
  // All-reduce buckets during backward (overlapped_allreduce.h) rather than
  // after it; needs prepare_backward() before each backward.
  bool overlap = true;
  int64_t bucket_bytes = 25 << 20;
  std::chrono::milliseconds timeout{120000};  // for the messages; the group enforces it
};

class DataParallel {
 public:
  // `params`: every trained parameter; `muon`: the hybrid's Muon part (null
  // for AdamW alone), whose matrices are sharded when options.shard_muon;
  // `adamw`: the AdamW part (or AdamW alone; null for none), sharded when
  // options.shard_adamw. `watch` (optional) names dead ranks in errors.
  DataParallel(c10::intrusive_ptr<compat::CollectiveGroup> group, std::vector<torch::Tensor> params,
               optim::Muon* muon, optim::AdamW* adamw, DataParallelOptions options,
               std::shared_ptr<RankWatch> watch = nullptr);
  ~DataParallel();

  int64_t rank() const { return rank_; }
  int64_t world_size() const { return world_size_; }
  bool sharded() const { return plan_.has_value(); }
  const MuonShardPlan* shard_plan() const { return plan_ ? &*plan_ : nullptr; }
  // Which rank steps each AdamW parameter; null when AdamW is not sharded.
  const MuonShardPlan* adamw_shard_plan() const { return adamw_plan_ ? &*adamw_plan_ : nullptr; }

  // Rank 0's weights on every rank (before the first step), as DDP does.
  void broadcast_parameters();

  // Before each backward of a step: `last_micro_step` arms the overlapped
  // all-reduce (gradient accumulation's earlier micro-steps only add up).
  void prepare_backward(bool last_micro_step);

  // Each gradient becomes the mean over ranks: on every rank, or under
  // distributed Muon, Muon's matrices' on their owner only. `everywhere`
  // all-reduces Muon's too, for diagnostics that read every gradient.
  void synchronize_gradients(bool everywhere = false);

  // This rank's share of the squared 2-norm of the synchronized gradient;
  // summed over ranks (sum_over_ranks) it is the global one, each element
  // counted once.
  double local_gradient_square_sum() const;
  // Multiplies the synchronized gradients (those this rank steps) by `factor`.
  void scale_gradients(double factor);

  // Element-wise sum over ranks of a few numbers (loss, stop flag, norm).
  std::vector<double> sum_over_ranks(const std::vector<double>& values);
  // Element-wise maximum over ranks, in place (QK-clip's per-head maxima).
  void max_over_ranks(torch::Tensor& values);

  // After the optimizer's step: every rank gets the parameters their owners
  // updated (Muon's matrices, AdamW's parameters). No-op without sharding.
  void gather_updated_parameters();

  // Under sharding, after loading a checkpoint: drops the optimizer state
  // this rank does not own (a checkpoint of one process holds all of it).
  void drop_unowned_optimizer_state();

  void barrier();

  // The current step, for error messages.
  void set_step(int64_t step) { step_ = step; }

  // Bytes this rank sends per step (the ring / all-to-all model above).
  double bytes_sent_per_step() const;

 private:
  // Runs one collective; a failure becomes an error naming what waited on whom.
  void run(const std::string& what, const std::function<void()>& collective);
  std::vector<double> sum_over_ranks(const std::vector<double>& values, const std::string& what);
  std::vector<torch::Tensor> replicated_params() const;  // all-reduced (and stepped everywhere unless sharded)
  void reduce_scatter_muon_gradients();
  // The shared halves of both optimizers' sharding, per plan.
  void all_gather_owned(const MuonShardPlan& plan, const std::string& what);
  void average_muon_gradients_everywhere();

  c10::intrusive_ptr<compat::CollectiveGroup> group_;
  std::vector<torch::Tensor> params_;
  optim::Muon* muon_;
  optim::AdamW* adamw_;
  DataParallelOptions options_;
  std::shared_ptr<RankWatch> watch_;
  int64_t rank_ = 0;
  int64_t world_size_ = 1;
  int64_t step_ = 0;
  torch::Device device_;  // the parameters', where every collective's tensors live
  std::optional<MuonShardPlan> plan_;        // Muon's matrices, under distributed Muon
  std::optional<MuonShardPlan> adamw_plan_;  // AdamW's parameters, under shard_adamw
  std::unique_ptr<OverlappedAllReduce> overlapped_;  // the replicated parameters' all-reduce, when overlapping
  bool muon_everywhere_ = false;  // the last synchronize_gradients all-reduced Muon's too
};

}  // namespace muonlab::distributed
