// `run.init_from`: a run that starts from trained weights instead of a
// random init (nanoGPT's init_from, for continued pre-training or
// fine-tuning with Muon): a Hugging Face GPT-2 or LLaMA folder (hf_import.h),
// a muonlab run folder or weights file in one, or a model file from
// `muonlab model init`.
#pragma once

#include <string>

#include "muonlab/models/transformer.h"

namespace muonlab::training {

// Copies the weights at `path` into `model`, whose architecture [model]
// describes. Every parameter must be there with the same shape, and nothing
// more; fails naming the first difference, having changed nothing.
void load_initial_weights(models::Transformer& model, const std::string& path);

}  // namespace muonlab::training
