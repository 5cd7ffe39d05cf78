// Multiple-choice evaluation as llm.c and lm-evaluation-harness score
// HellaSwag (Zellers et al., "HellaSwag: Can a Machine Really Finish Your
// Sentence?"): each choice is the context followed by " " + its ending, and
// its score is the model's next-token loss over the ending's tokens alone.
// The predicted ending has the lowest summed loss (`acc`) or the lowest
// mean loss per ending token (`acc_norm`, llm.c's HellaSwag figure).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "muonlab/data/tokenizer.h"
#include "muonlab/models/transformer.h"

namespace muonlab::training {

struct MultipleChoiceItem {
  std::string context;
  std::vector<std::string> endings;
  int64_t label = 0;  // the right ending's index
  std::string where;  // "file:line", for messages
};

// HellaSwag's JSON Lines, as its authors and llm.c ship the validation
// split: an object per line with "ctx" (a string), "endings" (two or more
// strings) and "label" (the right ending's index: an integer, or a string
// of one as Hugging Face's copy writes it); other fields are ignored. Any
// task written this way can be scored. Fails naming the file, the line and
// the field that is missing or wrong; blank lines are skipped. A .parquet
// file is read as Hugging Face's Parquet copy (Rowan/hellaswag): the columns
// ctx and label (strings) and endings (a list of strings), errors naming
// the row. `limit` > 0 keeps only the first `limit` items (every line or row
// is still checked).
std::vector<MultipleChoiceItem> read_multiple_choice_items(const std::string& path, int64_t limit = 0);

struct ChoiceLosses {
  std::vector<double> sums;     // per ending: its tokens' summed loss (natural log)
  std::vector<int64_t> tokens;  // per ending: how many tokens it has

  int64_t predicted() const;       // lowest sum (the first, on a tie)
  int64_t predicted_norm() const;  // lowest mean per token
};

// One forward over every ending of `item`, batched and padded at the end.
// A context with no tokens is preceded by the tokenizer's end-of-text
// token, so that the ending's first token has something to follow. A row
// longer than the model's context (block_size + 1 tokens) keeps its last
// tokens, as lm-evaluation-harness truncates; an ending longer than the
// context fails, naming the item. A mixture of experts with a capacity
// factor scores each ending in a forward of its own, so that no padding
// takes expert capacity. Eval mode and no autograd meanwhile.
ChoiceLosses score_choices(models::Transformer& model, const data::Tokenizer& tokenizer,
                           const MultipleChoiceItem& item, const torch::Device& device, bool bf16);

struct MultipleChoiceResult {
  int64_t items = 0;
  int64_t correct = 0;       // by the summed loss
  int64_t correct_norm = 0;  // by the mean loss per token

  double accuracy() const { return items > 0 ? static_cast<double>(correct) / items : 0; }
  double accuracy_norm() const { return items > 0 ? static_cast<double>(correct_norm) / items : 0; }
};

struct MultipleChoiceOptions {
  bool bf16 = false;  // autocast the forwards to bf16, as a bf16 run trains
  // Whether this process scores item `index` (every item when unset): ranks
  // of a distributed run split the items between them.
  std::function<bool(int64_t index)> computes;
  // After each forward: items passed so far, and in all.
  std::function<void(int64_t done, int64_t total)> progress;
};

// The items this process scores, in order; `items` counts only those. Items
// go several to a forward (about 32 endings, padded to the longest row),
// each answering as score_choices would score it alone; under an expert
// capacity each ending still goes alone, as in score_choices.
MultipleChoiceResult evaluate_multiple_choice(models::Transformer& model, const data::Tokenizer& tokenizer,
                                              const std::vector<MultipleChoiceItem>& items,
                                              const torch::Device& device, const MultipleChoiceOptions& options);

}  // namespace muonlab::training
