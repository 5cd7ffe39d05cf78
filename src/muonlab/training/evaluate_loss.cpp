#include "muonlab/training/evaluate_loss.h"

#include <algorithm>

#include "muonlab/core/errors.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/training/eval_mode_scope.h"

namespace muonlab::training {

int64_t eval_batch_count(int64_t tokens, int64_t batch_tokens, uint64_t batches_per_epoch) {
  const int64_t whole = (std::max<int64_t>(tokens, 0) + batch_tokens - 1) / batch_tokens;
  return std::clamp<int64_t>(whole, 1, std::max<int64_t>(static_cast<int64_t>(batches_per_epoch), 1));
}

double sum_of_batch_losses(models::Transformer& model, data::TokenLoader& loader, const torch::Device& device,
                           const LossSumOptions& options) {
  EvalModeScope scope(model);
  loader.restore({0, 0});
  // Summed on the device in float64 (the host's additions) and read once,
  // so the host does not wait for each forward before launching the next.
  torch::Tensor sum = torch::zeros({}, torch::dtype(torch::kFloat64).device(device));
  for (int64_t b = 0; b < options.batches; ++b) {
    data::Batch batch = loader.next();
    if (options.computes && !options.computes(b)) continue;
    compat::Autocast autocast(device, options.bf16, torch::kBFloat16);
    const data::Batch on_device = data::to_device(batch, device);
    auto output = model->forward(on_device.inputs);
    sum += models::next_token_loss(output.logits, on_device.targets).to(torch::kFloat64);
    if (options.progress) options.progress(b + 1, options.batches);
  }
  return sum.item<double>();
}

namespace {

// The next-token losses of targets ids[begin + 1 .. end] from one forward
// pass over inputs ids[begin .. end) (`ids` a [1, n] CPU tensor), as float64
// on the host.
std::vector<double> window_losses(models::Transformer& model, const torch::Tensor& ids, int64_t begin, int64_t end,
                                  const torch::Device& device, bool bf16) {
  const auto inputs = ids.slice(1, begin, end).to(device);
  const auto targets = ids.slice(1, begin + 1, end + 1).to(device);
  torch::Tensor losses;
  {
    compat::Autocast autocast(device, bf16, torch::kBFloat16);
    const auto logits = model->forward(inputs).logits;
    const auto wide = logits.scalar_type() == torch::kFloat64 ? logits : logits.to(torch::kFloat32);
    losses = torch::nn::functional::cross_entropy(
        wide.reshape({-1, wide.size(-1)}), targets.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  }
  const auto on_host = losses.to(torch::kCPU, torch::kFloat64).contiguous();
  return {on_host.data_ptr<double>(), on_host.data_ptr<double>() + on_host.numel()};
}

void check_sequence(const models::ModelConfig& config, const std::vector<int64_t>& ids, int64_t stride) {
  if (ids.size() < 2) fail("a sequence of {} id(s) has no next token to predict: give at least 2", ids.size());
  if (static_cast<int64_t>(ids.size()) > config.block_size + 1 && stride <= 0) {
    fail("a sequence of {} ids is longer than the model's context (block_size {}) + 1: give a stride to score it "
         "in windows",
         ids.size(), config.block_size);
  }
  if (stride > config.block_size) {
    fail("stride {} is longer than the model's context (block_size {}): it would skip tokens", stride,
         config.block_size);
  }
  if (const auto outside = config.first_id_outside_vocabulary(ids)) {
    fail("token id {} is outside the model's vocabulary [0, {})", *outside, config.vocab_size);
  }
}

}  // namespace

std::vector<double> per_token_losses(models::Transformer& model, const std::vector<int64_t>& ids,
                                     const torch::Device& device, bool bf16, int64_t stride) {
  check_sequence(model->config(), ids, stride);
  EvalModeScope scope(model);
  const auto all = torch::tensor(ids, torch::kInt64).unsqueeze(0);
  const auto targets = static_cast<int64_t>(ids.size()) - 1;
  const int64_t context = model->config().block_size;
  std::vector<double> losses;
  // Each window scores only the targets no earlier window reached.
  for (int64_t begin = 0;; begin += stride) {
    const int64_t end = std::min(begin + context, targets);
    const auto window = window_losses(model, all, begin, end, device, bf16);
    const auto fresh = static_cast<int64_t>(losses.size()) - begin;  // targets of this window scored already
    losses.insert(losses.end(), window.begin() + fresh, window.end());
    if (end == targets) return losses;
  }
}

}  // namespace muonlab::training
