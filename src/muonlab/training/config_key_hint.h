// "did you mean ...?" for an unknown train config key: muonlab's key where
// the typed one is another tool's name (nanoGPT's max_iters, Hugging Face
// TrainingArguments' learning_rate, a model field's n_embd), the keys of
// other sections with the same last part (training.steps: run.steps), or the
// nearest key by edit distance (run.stepz: run.steps); for another tool's
// setting that muonlab counts otherwise (nanoGPT's eval_iters), the key to
// use and how it counts.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace muonlab::training {

struct KeyAlias {
  std::string key;    // muonlab's: "run.steps"
  std::string whose;  // the tools whose name the other one is: "nanoGPT's"
};

// Training settings that nanoGPT's train.py, Hugging Face's
// TrainingArguments or torch.optim name otherwise, by that name ("max_iters"),
// where the meaning is the same. The model's fields are in
// models/model_field_aliases.h.
const std::map<std::string, KeyAlias>& trainer_key_aliases();

// Other tools' settings that muonlab counts in other units (nanoGPT's
// eval_iters counts batches, run.eval_tokens tokens), by name: the key to use
// and how it counts, as a sentence.
const std::map<std::string, std::string>& settings_counted_otherwise();

// " (nanoGPT's name for 'run.steps')", " (did you mean 'run.steps'?)",
// " (did you mean 'data.seed' or 'run.seed'?)", or "" when nothing in
// `known_keys` ("section.key", as "model.d_model") is near.
std::string unknown_key_hint(const std::string& key, const std::vector<std::string>& known_keys);

}  // namespace muonlab::training
