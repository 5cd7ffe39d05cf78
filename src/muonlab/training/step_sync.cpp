#include "muonlab/training/step_sync.h"

#include <chrono>
#include <cmath>

#include "muonlab/distributed/data_parallel.h"
#include "muonlab/distributed/rank_watch.h"

namespace muonlab::training {
namespace {

class Alone final : public StepSync {
 public:
  Alone(std::vector<torch::Tensor> parameters, double clip_grad_norm)
      : parameters_(std::move(parameters)), clip_grad_norm_(clip_grad_norm) {}

  void start(bool) override {}
  void before_backward(bool) override {}
  AgreedStep agree(int64_t, double loss, bool stop_requested, bool) override {
    AgreedStep agreed{loss, 0, stop_requested};
    if (clip_grad_norm_ > 0) {
      agreed.grad_norm = torch::nn::utils::clip_grad_norm_(parameters_, clip_grad_norm_);
      agreed.grad_norm_measured = true;
    }
    return agreed;
  }
  void after_update() override {}
  void barrier() override {}
  bool evaluates(int64_t) const override { return true; }
  std::vector<double> totals(const std::vector<double>& local) override { return local; }
  void max_over_ranks(torch::Tensor&) override {}

 private:
  std::vector<torch::Tensor> parameters_;
  double clip_grad_norm_;
};

class AsRank final : public StepSync {
 public:
  AsRank(std::unique_ptr<distributed::DataParallel> parallel, double clip_grad_norm)
      : parallel_(std::move(parallel)), clip_grad_norm_(clip_grad_norm) {}

  void start(bool resumed) override {
    if (resumed) parallel_->drop_unowned_optimizer_state();
    parallel_->broadcast_parameters();
  }
  void before_backward(bool last_micro_batch) override { parallel_->prepare_backward(last_micro_batch); }
  AgreedStep agree(int64_t step, double loss, bool stop_requested, bool everywhere) override {
    parallel_->set_step(step);
    parallel_->synchronize_gradients(everywhere);
    const auto sums =
        parallel_->sum_over_ranks({loss, stop_requested ? 1.0 : 0.0, parallel_->local_gradient_square_sum()});
    AgreedStep agreed{sums[0] / static_cast<double>(parallel_->world_size()), std::sqrt(sums[2]), sums[1] > 0,
                      /*grad_norm_measured=*/true};
    // torch::nn::utils::clip_grad_norm_'s rule, on the global norm.
    const double clip = clip_grad_norm_ / (agreed.grad_norm + 1e-6);
    if (clip_grad_norm_ > 0 && std::isfinite(agreed.grad_norm) && clip < 1) parallel_->scale_gradients(clip);
    return agreed;
  }
  void after_update() override { parallel_->gather_updated_parameters(); }
  void barrier() override { parallel_->barrier(); }
  bool evaluates(int64_t index) const override { return index % parallel_->world_size() == parallel_->rank(); }
  std::vector<double> totals(const std::vector<double>& local) override { return parallel_->sum_over_ranks(local); }
  void max_over_ranks(torch::Tensor& values) override { parallel_->max_over_ranks(values); }

 private:
  std::unique_ptr<distributed::DataParallel> parallel_;
  double clip_grad_norm_;
};

}  // namespace

std::unique_ptr<StepSync> make_step_sync(const distributed::DistEnv& env, const TrainConfig& config,
                                         const torch::Device& device, models::Transformer& model,
                                         TrainOptimizer& optimizer) {
  if (!env.distributed()) return std::make_unique<Alone>(model->parameters(), config.run.clip_grad_norm);
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(config.distributed.timeout_s * 1000));
  auto group = distributed::collective_group(env, device, timeout, format_train_config(config));
  auto watch = std::make_shared<distributed::RankWatch>(distributed::store_client(env, timeout), env.rank,
                                                        env.world_size);
  distributed::DataParallelOptions options;
  options.shard_muon = config.distributed.shard_muon;
  options.shard_adamw = config.distributed.shard_adamw;
  options.overlap = config.distributed.overlap;
  options.bucket_bytes = config.distributed.bucket_mb << 20;
  options.timeout = timeout;
  return std::make_unique<AsRank>(
      std::make_unique<distributed::DataParallel>(group, model->parameters(), optimizer.muon(), optimizer.adamw(),
                                                  options, watch),
      config.run.clip_grad_norm);
}

}  // namespace muonlab::training
