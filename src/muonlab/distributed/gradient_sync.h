// Data parallelism's one collective: after each rank's backward pass on its
// share of the global batch, every gradient becomes the mean over the ranks,
// so each rank's optimizer takes the step a single process would take on
// the whole batch (given equal shares and a mean loss).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "muonlab/core/torch_compat.h"

namespace muonlab::distributed {

// All-reduces the gradients of `params` in buckets of at most `bucket_bytes`
// (flattened per dtype: one collective per bucket, not per tensor) and
// divides by the group's size. A parameter without a gradient takes part as
// zeros, so every rank runs the same collectives; it gets the mean back.
void average_gradients(const std::vector<torch::Tensor>& params, compat::CollectiveGroup& group,
                       int64_t bucket_bytes = 25 << 20);

}  // namespace muonlab::distributed
