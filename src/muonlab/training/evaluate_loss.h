// Next-token loss of a model on held-out tokens, without training: the
// trainer's validation and `muonlab eval` compute it the same way, so a
// run's val_loss can be reproduced from its saved weights.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "muonlab/data/token_loader.h"
#include "muonlab/models/transformer.h"

namespace muonlab::training {

// The batches an evaluation of `tokens` tokens reads: whole batches of
// `batch_tokens`, at least one, at most one epoch of `batches_per_epoch`.
int64_t eval_batch_count(int64_t tokens, int64_t batch_tokens, uint64_t batches_per_epoch);

struct LossSumOptions {
  int64_t batches = 1;  // from the loader's start
  bool bf16 = false;    // autocast the forwards to bf16, as a bf16 run trains
  // Whether this process computes batch `index` (every batch when unset):
  // ranks of a distributed run split the batches between them.
  std::function<bool(int64_t index)> computes;
  // After each batch computed: batches read so far, and in all.
  std::function<void(int64_t done, int64_t batches)> progress;
};

// The sum over the batches this process computes of each batch's mean
// next-token loss (fp32 cross-entropy, summed in float64). The loader is
// rewound to its start first; the model is in eval mode meanwhile.
double sum_of_batch_losses(models::Transformer& model, data::TokenLoader& loader, const torch::Device& device,
                           const LossSumOptions& options);

// Each position's next-token loss (natural log) on one sequence of ids:
// ids.size() - 1 values, the loss of predicting ids[i + 1] from ids[0..i].
// A sequence longer than the model's context (block_size + 1 ids) is
// scored in windows of block_size inputs whose starts advance by `stride`
// tokens, each position by the first window that reaches it, as Hugging
// Face's strided perplexity does: after the first window every position
// sees at least block_size - stride tokens of context. Fails naming the
// limit on fewer than 2 ids, on a sequence longer than the context with
// stride 0, and on a stride longer than the context.
std::vector<double> per_token_losses(models::Transformer& model, const std::vector<int64_t>& ids,
                                     const torch::Device& device, bool bf16, int64_t stride = 0);

}  // namespace muonlab::training
