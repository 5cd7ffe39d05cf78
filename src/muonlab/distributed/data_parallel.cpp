#include "muonlab/distributed/data_parallel.h"

#include "muonlab/distributed/collective_group.h"

#include <unordered_set>

#include "muonlab/core/errors.h"
#include "muonlab/distributed/gradient_sync.h"
#include "muonlab/distributed/overlapped_allreduce.h"
#include "muonlab/distributed/rank_watch.h"

namespace muonlab::distributed {

namespace {

// The optimizer steps (and keeps state for) the parameters `plan` gives `rank`.
void own_share(optim::OptimizerBase& optimizer, const MuonShardPlan& plan, int64_t rank) {
  std::unordered_set<const void*> owned;
  for (size_t i = 0; i < plan.params.size(); ++i) {
    if (plan.owns(rank, i)) owned.insert(plan.params[i].unsafeGetTensorImpl());
  }
  optimizer.set_ownership([owned](const torch::Tensor& p) { return owned.count(p.unsafeGetTensorImpl()) > 0; });
}

}  // namespace

DataParallel::DataParallel(c10::intrusive_ptr<compat::CollectiveGroup> group, std::vector<torch::Tensor> params,
                           optim::Muon* muon, optim::AdamW* adamw, DataParallelOptions options,
                           std::shared_ptr<RankWatch> watch)
    : group_(std::move(group)),
      params_(std::move(params)),
      muon_(muon),
      adamw_(adamw),
      options_(options),
      watch_(std::move(watch)),
      rank_(group_->getRank()),
      world_size_(group_->getSize()),
      device_(params_.empty() ? torch::Device(torch::kCPU) : params_.front().device()) {
  if (options_.shard_muon && muon_ != nullptr && world_size_ > 1) {
    plan_ = plan_muon_shards(muon_->all_parameters(), world_size_);
    own_share(*muon_, *plan_, rank_);
  }
  if (options_.shard_adamw && adamw_ != nullptr && world_size_ > 1 && !adamw_->all_parameters().empty()) {
    adamw_plan_ = plan_muon_shards(adamw_->all_parameters(), world_size_);
    own_share(*adamw_, *adamw_plan_, rank_);
  }
  if (options_.overlap && world_size_ > 1) {
    overlapped_ = std::make_unique<OverlappedAllReduce>(group_, replicated_params(), options_.bucket_bytes);
  }
}

DataParallel::~DataParallel() {
  overlapped_.reset();
  if (muon_ != nullptr && plan_) muon_->set_ownership(nullptr);
  if (adamw_ != nullptr && adamw_plan_) adamw_->set_ownership(nullptr);
}

void DataParallel::run(const std::string& what, const std::function<void()>& collective) {
  try {
    collective();
  } catch (const std::exception& error) {
    const std::string silent = watch_ ? watch_->silent_ranks() : "";
    std::string cause = error.what();
    cause = cause.substr(0, cause.find('\n'));
    fail("rank {} of {}: {} at step {} failed: {}. {} (a collective waits at most distributed.timeout_s = {} s)",
         rank_, world_size_, what, step_, cause,
         silent.empty() ? "A peer rank died or stopped answering" : "Not answering: " + silent,
         std::chrono::duration<double>(options_.timeout).count());
  }
}

std::vector<torch::Tensor> DataParallel::replicated_params() const {
  if (!plan_) return params_;
  std::unordered_set<const void*> muon_params;
  for (const auto& p : plan_->params) muon_params.insert(p.unsafeGetTensorImpl());
  std::vector<torch::Tensor> rest;
  for (const auto& p : params_) {
    if (muon_params.count(p.unsafeGetTensorImpl()) == 0) rest.push_back(p);
  }
  return rest;
}

void DataParallel::broadcast_parameters() {
  torch::NoGradGuard no_grad;
  run("broadcast of rank 0's weights", [&] {
    for (auto& p : params_) {
      std::vector<torch::Tensor> tensors = {p.detach()};
      group_->broadcast(tensors)->wait();
    }
  });
}

void DataParallel::prepare_backward(bool last_micro_step) {
  if (overlapped_ && last_micro_step) overlapped_->arm();
}

void DataParallel::synchronize_gradients(bool everywhere) {
  muon_everywhere_ = everywhere || !plan_;
  if (overlapped_ && overlapped_->armed()) {
    run("all-reduce of gradients (overlapped with backward)", [&] { overlapped_->finish(); });
  } else {
    run("all-reduce of gradients",
        [&] { average_gradients(replicated_params(), *group_, options_.bucket_bytes); });
  }
  if (!plan_) return;
  if (muon_everywhere_) {
    run("all-reduce of Muon's gradients", [&] { average_gradients(plan_->params, *group_, options_.bucket_bytes); });
  } else {
    reduce_scatter_muon_gradients();
  }
}

void DataParallel::reduce_scatter_muon_gradients() {
  torch::NoGradGuard no_grad;
  const MuonShardPlan& plan = *plan_;
  for (auto& p : plan.params) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
  }
  if (plan.segment == 0) return;
  // Chunk r of the input goes to rank r: this rank's gradients of r's matrices.
  torch::Tensor outgoing = pack_segments(plan, [&](size_t i) { return plan.params[i].grad(); });
  torch::Tensor incoming = torch::empty_like(outgoing);
  run("reduce-scatter of Muon's gradients (all-to-all)", [&] {
    std::vector<int64_t> equal_chunks;
    group_->alltoall_base(incoming, outgoing, equal_chunks, equal_chunks)->wait();
  });
  // Chunk r of the output: rank r's gradients of this rank's matrices.
  const torch::Tensor mean = incoming.view({world_size_, plan.segment}).sum(0).div_(static_cast<double>(world_size_));
  for (size_t i = 0; i < plan.params.size(); ++i) {
    if (!plan.owns(rank_, i)) continue;
    auto& grad = plan.params[i].mutable_grad();
    grad.copy_(mean.narrow(0, plan.offset[i], grad.numel()).view_as(grad));
  }
}

double DataParallel::local_gradient_square_sum() const {
  torch::NoGradGuard no_grad;
  // Summed on the device in float64 (the same additions as on the host) and
  // read once: a read per parameter would be a GPU sync per parameter.
  auto sum = torch::zeros({}, torch::dtype(torch::kFloat64).device(params_.empty() ? torch::kCPU : params_.front().device()));
  auto add_square_sum = [&sum](const torch::Tensor& p) {
    if (p.grad().defined()) sum += p.grad().to(torch::kFloat64).square().sum();
  };
  // Replicated gradients are the same on every rank: rank 0 counts them.
  if (rank_ == 0) {
    for (const auto& p : muon_everywhere_ ? params_ : replicated_params()) add_square_sum(p);
  }
  if (!muon_everywhere_) {
    for (size_t i = 0; i < plan_->params.size(); ++i) {
      if (plan_->owns(rank_, i)) add_square_sum(plan_->params[i]);
    }
  }
  return sum.item<double>();
}

void DataParallel::scale_gradients(double factor) {
  torch::NoGradGuard no_grad;
  for (auto& p : params_) {
    if (p.grad().defined()) p.mutable_grad().mul_(factor);
  }
}

std::vector<double> DataParallel::sum_over_ranks(const std::vector<double>& values) {
  return sum_over_ranks(values, "all-reduce of the step's loss and gradient norm");
}

std::vector<double> DataParallel::sum_over_ranks(const std::vector<double>& values, const std::string& what) {
  std::vector<torch::Tensor> tensor = {torch::tensor(values, torch::kFloat64).to(device_)};
  run(what, [&] { group_->allreduce(tensor)->wait(); });
  // On a GPU wait() only orders the streams; reading the sums waits for them.
  const torch::Tensor sums = tensor[0].cpu();
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + values.size());
}

void DataParallel::max_over_ranks(torch::Tensor& values) {
  std::vector<torch::Tensor> tensor = {values};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::MAX;
  run("all-reduce (max) of the attention heads' largest logits", [&] { group_->allreduce(tensor, options)->wait(); });
}

void DataParallel::gather_updated_parameters() {
  if (plan_) all_gather_owned(*plan_, "all-gather of Muon's updated matrices");
  if (adamw_plan_) all_gather_owned(*adamw_plan_, "all-gather of AdamW's updated parameters");
}

void DataParallel::all_gather_owned(const MuonShardPlan& plan, const std::string& what) {
  if (plan.segment == 0) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> mine = {pack_segment(plan, rank_, [&](size_t i) { return plan.params[i].detach(); })};
  std::vector<std::vector<torch::Tensor>> all(1);
  for (int64_t r = 0; r < world_size_; ++r) all[0].push_back(torch::empty_like(mine[0]));
  run(what, [&] { group_->allgather(all, mine)->wait(); });
  const torch::Tensor segments = torch::cat(all[0]);
  for (size_t i = 0; i < plan.params.size(); ++i) {
    if (!plan.owns(rank_, i)) plan.params[i].detach().copy_(slice_of(plan, segments, i));
  }
}

void DataParallel::drop_unowned_optimizer_state() {
  const auto drop = [this](const MuonShardPlan& plan, optim::OptimizerBase& optimizer) {
    for (size_t i = 0; i < plan.params.size(); ++i) {
      if (!plan.owns(rank_, i)) optimizer.drop_state(plan.params[i]);
    }
  };
  if (plan_) drop(*plan_, *muon_);
  if (adamw_plan_) drop(*adamw_plan_, *adamw_);
}

// An all-reduce every rank must join before any gets its result: a barrier
// on either backend (NCCL's own barrier guesses each rank's GPU).
void DataParallel::barrier() { sum_over_ranks({1.0}, "barrier"); }

double DataParallel::bytes_sent_per_step() const {
  const double n = static_cast<double>(world_size_);
  auto bytes_of = [](const std::vector<torch::Tensor>& params) {
    double bytes = 0;
    for (const auto& p : params) bytes += static_cast<double>(p.numel() * static_cast<int64_t>(p.element_size()));
    return bytes;
  };
  double sent = 2 * (n - 1) / n * bytes_of(replicated_params());
  if (plan_ && !plan_->params.empty()) {
    const double buffer = static_cast<double>(world_size_ * plan_->segment * plan_->params.front().element_size());
    sent += 2 * (n - 1) / n * buffer;  // all-to-all out, all-gather back
  }
  if (adamw_plan_ && !adamw_plan_->params.empty()) {
    const auto& plan = *adamw_plan_;
    sent += (n - 1) / n * static_cast<double>(world_size_ * plan.segment * plan.params.front().element_size());
  }
  return sent;
}

}  // namespace muonlab::distributed
