// A model on disk: its config (as describe() text) and its parameters by
// name, written atomically. Loading checks every name and shape before it
// copies anything, so a mismatched file changes nothing.
#pragma once

#include <string>

#include "muonlab/models/model_config.h"
#include "muonlab/models/transformer.h"

namespace muonlab::models {

void save_model(const Transformer& model, const std::string& path);

ModelConfig read_model_config(const std::string& path);

// Copies the file's parameters into `model`: the same names and shapes, or
// an error naming the file and the first difference.
void load_model_weights(Transformer& model, const std::string& path);

// A new model built from the file's config, with its weights.
Transformer load_model(const std::string& path);

}  // namespace muonlab::models
