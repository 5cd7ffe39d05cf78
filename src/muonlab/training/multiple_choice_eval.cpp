#include "muonlab/training/multiple_choice_eval.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "muonlab/core/errors.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/data/parquet_string_column.h"
#include "muonlab/training/eval_mode_scope.h"

namespace muonlab::training {
namespace {

constexpr int64_t kIgnoredTarget = -100;

int64_t parse_choice_label(const nlohmann::json& label, size_t endings, const std::string& where) {
  int64_t value = -1;
  if (label.is_number_integer()) {
    value = label.get<int64_t>();
  } else if (label.is_string()) {
    const std::string& text = label.get_ref<const std::string&>();
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) value = -1;
  }
  if (value < 0 || value >= static_cast<int64_t>(endings)) {
    // HellaSwag's test split ships without answers: "" in Hugging Face's
    // copy (a null in a Parquet file holding one).
    const bool unlabelled = label.is_null() || (label.is_string() && label.get_ref<const std::string&>().empty());
    fail("{}: \"label\" is {}, expected the right ending's index, 0 to {}{}", where, label.dump(), endings - 1,
         unlabelled ? " (HellaSwag's test split has no answers: score its validation split)" : "");
  }
  return value;
}

MultipleChoiceItem parse_choice_item(const std::string& line, const std::string& where) {
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& error) {
    fail("{}: not JSON ({})", where, error.what());
  }
  if (!object.is_object()) fail("{}: expected a JSON object with ctx, endings and label", where);
  MultipleChoiceItem item;
  item.where = where;
  const auto context = object.find("ctx");
  if (context == object.end() || !context->is_string()) fail("{}: expected a string \"ctx\" (the context)", where);
  item.context = context->get<std::string>();
  const auto endings = object.find("endings");
  if (endings == object.end() || !endings->is_array() || endings->size() < 2) {
    fail("{}: expected \"endings\", an array of two or more strings", where);
  }
  for (const auto& ending : *endings) {
    if (!ending.is_string()) fail("{}: \"endings\" holds {}, expected strings", where, ending.dump());
    item.endings.push_back(ending.get<std::string>());
  }
  const auto label = object.find("label");
  if (label == object.end()) fail("{}: no \"label\" (the right ending's index)", where);
  item.label = parse_choice_label(*label, item.endings.size(), where);
  return item;
}

// The token rows of an item's choices, and how many tokens end each one.
struct ChoiceRows {
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> ending_tokens;
};

ChoiceRows tokenize_choices(const models::ModelConfig& config, const data::Tokenizer& tokenizer,
                            const MultipleChoiceItem& item) {
  const data::TokenIds encoded_context = tokenizer.encode_ordinary(item.context);
  std::vector<int64_t> context(encoded_context.begin(), encoded_context.end());
  if (context.empty()) context.push_back(tokenizer.eot_token());
  ChoiceRows choices;
  for (size_t i = 0; i < item.endings.size(); ++i) {
    const data::TokenIds ending = tokenizer.encode_ordinary(" " + item.endings[i]);
    const auto length = static_cast<int64_t>(ending.size());
    if (length > config.block_size) {
      fail("{}: ending {} is {} tokens, longer than the model's context (block_size {})", item.where, i, length,
           config.block_size);
    }
    std::vector<int64_t> row = context;
    row.insert(row.end(), ending.begin(), ending.end());
    const auto keep = std::min<size_t>(row.size(), static_cast<size_t>(config.block_size) + 1);
    row.erase(row.begin(), row.end() - static_cast<std::ptrdiff_t>(keep));
    if (const auto outside = config.first_id_outside_vocabulary(row)) {
      fail("{}: token id {} is outside the model's vocabulary [0, {}): is the tokenizer the model's?", item.where,
           *outside, config.vocab_size);
    }
    choices.rows.push_back(std::move(row));
    choices.ending_tokens.push_back(length);
  }
  return choices;
}

// Inputs [choices, longest - 1], padded with id 0 after each row (a causal
// model's earlier positions do not see it), and targets that are
// kIgnoredTarget everywhere but the ending's tokens.
std::pair<torch::Tensor, torch::Tensor> choice_batch(const ChoiceRows& choices) {
  size_t longest = 0;
  for (const auto& row : choices.rows) longest = std::max(longest, row.size());
  const auto count = static_cast<int64_t>(choices.rows.size());
  auto inputs = torch::zeros({count, static_cast<int64_t>(longest) - 1}, torch::kInt64);
  auto targets = torch::full({count, static_cast<int64_t>(longest) - 1}, kIgnoredTarget, torch::kInt64);
  auto in = inputs.accessor<int64_t, 2>();
  auto out = targets.accessor<int64_t, 2>();
  for (int64_t r = 0; r < count; ++r) {
    const auto& row = choices.rows[r];
    const auto positions = static_cast<int64_t>(row.size()) - 1;
    for (int64_t p = 0; p < positions; ++p) in[r][p] = row[p];
    for (int64_t p = positions - choices.ending_tokens[r]; p < positions; ++p) out[r][p] = row[p + 1];
  }
  return {inputs, targets};
}

// Each row's summed loss over its ending, from one forward over the rows
// with logits at the ending's positions alone.
std::vector<double> ending_loss_sums(models::Transformer& model, const ChoiceRows& choices,
                                     const torch::Device& device, bool bf16) {
  const auto [inputs, targets] = choice_batch(choices);
  const auto scored = targets != kIgnoredTarget;
  // The row of each scored position, in the row-major order of the logits.
  const auto rows = torch::arange(targets.size(0), torch::kInt64).unsqueeze(1).expand_as(targets).index({scored});
  torch::Tensor sums;
  {
    compat::Autocast autocast(device, bf16, torch::kBFloat16);
    const auto logits = model->forward_where(inputs.to(device), scored.to(device)).logits;
    const auto wide = logits.scalar_type() == torch::kFloat64 ? logits : logits.to(torch::kFloat32);
    const auto losses = torch::nn::functional::cross_entropy(
        wide, targets.index({scored}).to(device),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    sums = torch::zeros({targets.size(0)}, torch::dtype(torch::kFloat64).device(device))
               .index_add_(0, rows.to(device), losses.to(torch::kFloat64));
  }
  const auto on_host = sums.to(torch::kCPU).contiguous();
  return {on_host.data_ptr<double>(), on_host.data_ptr<double>() + on_host.numel()};
}

// Each row's summed loss over its ending: every row in one forward, or,
// under an expert capacity, each in a forward of its own (padding would take
// capacity from real tokens, and a batch's tokens share it).
std::vector<double> row_loss_sums(models::Transformer& model, const ChoiceRows& choices, const torch::Device& device,
                                  bool bf16) {
  const models::ModelConfig& config = model->config();
  const bool capacity = config.feed_forward == models::FeedForwardKind::kMoe && config.moe.capacity_factor > 0;
  if (!capacity) return ending_loss_sums(model, choices, device, bf16);
  std::vector<double> sums;
  for (size_t i = 0; i < choices.rows.size(); ++i) {
    const ChoiceRows alone{{choices.rows[i]}, {choices.ending_tokens[i]}};
    sums.push_back(ending_loss_sums(model, alone, device, bf16).front());
  }
  return sums;
}

int64_t lowest(const std::vector<double>& values) {
  return std::min_element(values.begin(), values.end()) - values.begin();
}

std::vector<MultipleChoiceItem> read_json_lines_items(const std::string& path) {
  std::ifstream file(path);
  if (!file) fail("cannot open '{}' (multiple-choice items as JSON Lines)", path);
  std::vector<MultipleChoiceItem> items;
  std::string line;
  for (int64_t number = 1; std::getline(file, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    items.push_back(parse_choice_item(line, fmt::format("{}:{}", path, number)));
  }
  return items;
}

// Hugging Face's Parquet copy (Rowan/hellaswag): the columns ctx (strings),
// endings (lists of strings) and label (strings), read one after the other.
std::vector<MultipleChoiceItem> read_parquet_items(const std::string& path) {
  std::vector<MultipleChoiceItem> items;
  size_t row = 0;
  // The item of the row a column is at, which the ctx column created.
  const auto next_item = [&](const char* column) -> MultipleChoiceItem& {
    if (row >= items.size()) fail("'{}': column '{}' has more rows than column 'ctx'", path, column);
    return items[row++];
  };
  const auto every_row_read = [&](const char* column) {
    if (row != items.size()) fail("'{}': column '{}' has fewer rows than column 'ctx'", path, column);
    row = 0;
  };
  try {
    data::read_parquet_string_column(path, "ctx", [&](const std::string_view* context) {
      MultipleChoiceItem item;
      item.where = fmt::format("{}, row {}", path, items.size());
      if (context == nullptr) fail("{}: \"ctx\" is null, expected a string (the context)", item.where);
      item.context = std::string(*context);
      items.push_back(std::move(item));
    });
    data::read_parquet_string_list_column(path, "endings", [&](const data::ParquetStringList* endings) {
      MultipleChoiceItem& item = next_item("endings");
      if (endings == nullptr || endings->size() < 2) {
        fail("{}: expected \"endings\", a list of two or more strings", item.where);
      }
      for (const auto& ending : *endings) {
        if (!ending) fail("{}: \"endings\" holds a null, expected strings", item.where);
        item.endings.push_back(*ending);
      }
    });
    every_row_read("endings");
    data::read_parquet_string_column(path, "label", [&](const std::string_view* label) {
      MultipleChoiceItem& item = next_item("label");
      const nlohmann::json value = label ? nlohmann::json(std::string(*label)) : nlohmann::json();
      item.label = parse_choice_label(value, item.endings.size(), item.where);
    });
    every_row_read("label");
  } catch (const data::ParquetMissingColumn& error) {
    fail("{}; expected HellaSwag's columns ctx, endings and label", error.what());
  }
  return items;
}

}  // namespace

std::vector<MultipleChoiceItem> read_multiple_choice_items(const std::string& path, int64_t limit) {
  const bool parquet = std::filesystem::path(path).extension() == ".parquet";
  std::vector<MultipleChoiceItem> items = parquet ? read_parquet_items(path) : read_json_lines_items(path);
  if (items.empty()) fail("'{}' holds no items: expected JSON Lines with ctx, endings and label", path);
  if (limit > 0 && limit < static_cast<int64_t>(items.size())) items.resize(static_cast<size_t>(limit));
  return items;
}

int64_t ChoiceLosses::predicted() const { return lowest(sums); }

int64_t ChoiceLosses::predicted_norm() const {
  std::vector<double> means(sums.size());
  for (size_t i = 0; i < sums.size(); ++i) means[i] = sums[i] / static_cast<double>(tokens[i]);
  return lowest(means);
}

ChoiceLosses score_choices(models::Transformer& model, const data::Tokenizer& tokenizer,
                           const MultipleChoiceItem& item, const torch::Device& device, bool bf16) {
  const ChoiceRows choices = tokenize_choices(model->config(), tokenizer, item);
  EvalModeScope scope(model);
  ChoiceLosses result;
  result.tokens = choices.ending_tokens;
  result.sums = row_loss_sums(model, choices, device, bf16);
  return result;
}

namespace {

// Rows (endings) scored in one forward when items are batched: enough to
// amortize a forward's fixed cost over several items (1.45-1.5x faster than
// an item a forward for the main job's model on a 2-core CPU; 64 rows gained
// 3-4% more), few enough that the logits at the endings' positions stay
// small (32 rows of 20 ending tokens over GPT-2's vocabulary: 128 MB).
constexpr size_t kRowsPerForward = 32;

void count_answer(const MultipleChoiceItem& item, const ChoiceLosses& losses, MultipleChoiceResult& result) {
  ++result.items;
  result.correct += losses.predicted() == item.label;
  result.correct_norm += losses.predicted_norm() == item.label;
}

// Items gathered for one forward, scored together.
class ChoiceBatch {
 public:
  void add(const MultipleChoiceItem& item, ChoiceRows rows) {
    items_.push_back(&item);
    first_rows_.push_back(rows_.rows.size());
    for (size_t i = 0; i < rows.rows.size(); ++i) {
      rows_.rows.push_back(std::move(rows.rows[i]));
      rows_.ending_tokens.push_back(rows.ending_tokens[i]);
    }
  }
  bool full() const { return rows_.rows.size() >= kRowsPerForward; }

  // Scores the gathered items into `result` and empties the batch.
  void score(models::Transformer& model, const torch::Device& device, bool bf16, MultipleChoiceResult& result) {
    if (items_.empty()) return;
    const std::vector<double> sums = row_loss_sums(model, rows_, device, bf16);
    for (size_t k = 0; k < items_.size(); ++k) {
      const size_t first = first_rows_[k], count = items_[k]->endings.size();
      ChoiceLosses losses;
      losses.sums.assign(sums.begin() + first, sums.begin() + first + count);
      losses.tokens.assign(rows_.ending_tokens.begin() + first, rows_.ending_tokens.begin() + first + count);
      count_answer(*items_[k], losses, result);
    }
    items_.clear();
    first_rows_.clear();
    rows_ = {};
  }

 private:
  std::vector<const MultipleChoiceItem*> items_;
  std::vector<size_t> first_rows_;  // each item's first row in rows_
  ChoiceRows rows_;
};

}  // namespace

MultipleChoiceResult evaluate_multiple_choice(models::Transformer& model, const data::Tokenizer& tokenizer,
                                              const std::vector<MultipleChoiceItem>& items,
                                              const torch::Device& device, const MultipleChoiceOptions& options) {
  MultipleChoiceResult result;
  const auto total = static_cast<int64_t>(items.size());
  ChoiceBatch batch;
  int64_t passed = 0;  // items before the batch's end, scored or another rank's
  const auto score_batch = [&] {
    EvalModeScope scope(model);
    batch.score(model, device, options.bf16, result);
    if (options.progress) options.progress(passed, total);
  };
  for (int64_t index = 0; index < total; ++index) {
    const auto& item = items[static_cast<size_t>(index)];
    ++passed;
    if (options.computes && !options.computes(index)) continue;
    batch.add(item, tokenize_choices(model->config(), tokenizer, item));
    if (batch.full()) score_batch();
  }
  score_batch();
  return result;
}

}  // namespace muonlab::training
