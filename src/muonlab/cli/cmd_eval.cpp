// `muonlab eval`: a model's next-token loss and perplexity on token shards
// (as the trainer's validation computes it) or on one text or id sequence
// (with each position's loss), or its accuracy on multiple-choice items in
// HellaSwag's format, without training.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/cli/list_args.h"
#include "muonlab/cli/model_args.h"
#include "muonlab/cli/progress_bar.h"
#include "muonlab/core/errors.h"
#include "muonlab/data/tokenizer.h"
#include "muonlab/training/evaluate_loss.h"
#include "muonlab/training/multiple_choice_eval.h"
#include "muonlab/training/train_config.h"

namespace muonlab::cli {
namespace {

struct EvalArgs {
  ModelArgs model;
  std::string data;  // shards; default: the run's validation split
  std::optional<int64_t> batch_size;
  std::optional<int64_t> seq_len;
  std::optional<int64_t> tokens;  // 0: the whole split
  std::optional<std::string> text;  // given, even empty: evaluate this text
  std::string ids;
  std::optional<int64_t> stride;  // --text/--ids longer than the context; default: half the context
  std::string hellaswag;          // multiple-choice items (JSON Lines: ctx, endings, label)
  int64_t items = 0;              // of them, from the start; 0: all
  std::string tokenizer;  // default: the run's data.tokenizer, else gpt2
  std::string dtype;      // default: the run's run.dtype, else fp32
  bool json = false;
};

struct EvalSettings {
  std::string data;
  int64_t batch_size = 8;
  int64_t seq_len = 0;
  int64_t tokens = 0;  // 0: the whole split
  std::string dtype = "fp32";
  std::string tokenizer = "gpt2";
  bool bf16 = false;  // dtype resolved on the device: autocast the forwards to bf16
};

EvalSettings resolve_eval_settings(const EvalArgs& args, const models::ModelConfig& model,
                                   const torch::Device& device) {
  EvalSettings r;
  r.seq_len = model.block_size;
  // A training run's model: its validation data, batch, sequence length,
  // eval_tokens and precision, so that eval reproduces its last val_loss.
  if (auto run = args.model.run_config()) {
    r.data = run->data.val;
    r.batch_size = run->data.batch_size;
    r.seq_len = run->data.seq_len > 0 ? run->data.seq_len : model.block_size;
    r.tokens = run->run.eval_tokens;
    r.dtype = run->run.dtype;
    r.tokenizer = run->data.tokenizer;
  }
  if (auto bundled = args.model.bundled_tokenizer()) r.tokenizer = *bundled;
  if (!args.data.empty()) r.data = args.data;
  if (args.batch_size) r.batch_size = *args.batch_size;
  if (args.seq_len) r.seq_len = *args.seq_len;
  if (args.tokens) r.tokens = *args.tokens;
  if (!args.dtype.empty()) r.dtype = args.dtype;
  if (!args.tokenizer.empty()) r.tokenizer = args.tokenizer;
  if (r.dtype != "fp32" && r.dtype != "bf16" && r.dtype != "auto") {
    fail("--dtype '{}': expected fp32, bf16 or auto", r.dtype);
  }
  if (r.batch_size <= 0) fail("--batch-size {}: expected a positive number of sequences", r.batch_size);
  if (r.seq_len <= 0 || r.seq_len > model.block_size) {
    fail("--seq-len {}: expected 1 to the model's block_size {}", r.seq_len, model.block_size);
  }
  if (r.tokens < 0) fail("--tokens {}: expected 0 (the whole split) or a positive count", r.tokens);
  r.bf16 = training::training_dtype(r.dtype, device) == torch::kBFloat16;
  return r;
}

void print_eval_result(const EvalArgs& args, double loss, int64_t tokens, const std::string& over,
                       const std::string& precision, const std::vector<double>& token_losses) {
  if (args.json) {
    nlohmann::ordered_json record = {{"loss", loss}, {"perplexity", std::exp(loss)}, {"tokens", tokens},
                                     {"precision", precision}};
    if (!token_losses.empty()) record["token_losses"] = token_losses;
    std::cout << record.dump() << std::endl;
    return;
  }
  std::cout << fmt::format("loss {:.6f} (perplexity {:.2f}) over {} tokens {}; {}", loss, std::exp(loss), tokens,
                           over, precision)
            << std::endl;
}

std::string eval_precision_text(const EvalSettings& r, const torch::Device& device) {
  return fmt::format("{} on {}{}", r.bf16 ? "bf16 autocast" : "fp32", device.str(), r.dtype == "auto" ? " (auto)" : "");
}

void eval_sequence(const EvalArgs& args, models::Transformer& model, const EvalSettings& r,
                   const torch::Device& device) {
  std::vector<int64_t> ids;
  if (!args.ids.empty()) {
    ids = parse_token_ids(args.ids, "--ids");
  } else {
    const data::TokenIds encoded = data::load_tokenizer(r.tokenizer)->encode(*args.text);
    ids.assign(encoded.begin(), encoded.end());
  }
  const int64_t context = model->config().block_size;
  const int64_t stride = args.stride.value_or(std::max<int64_t>(context / 2, 1));
  if (stride < 1 || stride > context) fail("--stride {}: expected 1 to the model's block_size {}", stride, context);
  const bool windowed = static_cast<int64_t>(ids.size()) > context + 1;
  const auto losses = training::per_token_losses(model, ids, device, r.bf16, stride);
  double sum = 0;
  for (double loss : losses) sum += loss;
  const std::string windows = windowed ? fmt::format(" (windows of {}, stride {})", context, stride) : "";
  print_eval_result(args, sum / static_cast<double>(losses.size()), static_cast<int64_t>(losses.size()),
                    fmt::format("predicted in a sequence of {}{}", ids.size(), windows), eval_precision_text(r, device),
                    losses);
}

void eval_shards(const EvalArgs& args, models::Transformer& model, const EvalSettings& r, const torch::Device& device) {
  if (r.data.empty()) fail("no data: give --data SHARDS (a file, folder or glob), --text or --ids");
  data::LoaderOptions options;
  options.batch_size = r.batch_size;
  options.seq_len = r.seq_len;
  options.vocab_size = model->config().vocab_size;
  data::TokenLoader loader(data::find_shards(r.data), options);
  const int64_t batch_tokens = r.batch_size * r.seq_len;
  if (loader.batches_per_epoch() == 0) {
    fail("'{}' holds {} tokens, less than one batch of {} x {} (+1): lower --batch-size or --seq-len", r.data,
         loader.total_tokens(), r.batch_size, r.seq_len);
  }
  training::LossSumOptions sum_options;
  sum_options.batches = r.tokens == 0 ? static_cast<int64_t>(loader.batches_per_epoch())
                                      : training::eval_batch_count(r.tokens, batch_tokens, loader.batches_per_epoch());
  sum_options.bf16 = r.bf16;
  const double sum = training::sum_of_batch_losses(model, loader, device, sum_options);
  print_eval_result(args, sum / static_cast<double>(sum_options.batches), sum_options.batches * batch_tokens,
                    fmt::format("of {}: {} batches of {} x {}", r.data, sum_options.batches, r.batch_size, r.seq_len),
                    eval_precision_text(r, device), {});
}

void eval_multiple_choice(const EvalArgs& args, models::Transformer& model, const EvalSettings& r,
                          const torch::Device& device) {
  if (args.items < 0) fail("--items {}: expected 0 (all) or a positive count", args.items);
  const auto items = training::read_multiple_choice_items(args.hellaswag, args.items);
  const auto tokenizer = data::load_tokenizer(r.tokenizer);
  ProgressBar bar("hellaswag");
  const auto start = std::chrono::steady_clock::now();
  training::MultipleChoiceOptions options;
  options.bf16 = r.bf16;
  options.progress = [&](int64_t done, int64_t total) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bar.update(done, total, fmt::format("{:.1f} items/s", done / std::max(seconds, 1e-9)));
  };
  const auto result = training::evaluate_multiple_choice(model, *tokenizer, items, device, options);
  bar.finish();
  const std::string precision = eval_precision_text(r, device);
  if (args.json) {
    nlohmann::ordered_json record = {{"items", result.items},
                                     {"acc_norm", result.accuracy_norm()},
                                     {"acc", result.accuracy()},
                                     {"correct_norm", result.correct_norm},
                                     {"correct", result.correct},
                                     {"tokenizer", tokenizer->name()},
                                     {"precision", precision}};
    std::cout << record.dump() << std::endl;
    return;
  }
  std::cout << fmt::format("acc_norm {:.4f} ({} of {}), acc {:.4f} ({}) on {}; {} tokenizer; {}",
                           result.accuracy_norm(), result.correct_norm, result.items, result.accuracy(),
                           result.correct, args.hellaswag, tokenizer->name(), precision)
            << std::endl;
}

void run_eval(const EvalArgs& args) {
  const int inputs = int{!args.data.empty()} + int{args.text.has_value()} + int{!args.ids.empty()} +
                     int{!args.hellaswag.empty()};
  if (inputs > 1) fail("give one of --data, --text, --ids and --hellaswag");
  auto model = args.model.build();
  const auto device = args.model.torch_device();
  const EvalSettings resolved = resolve_eval_settings(args, model->config(), device);
  if (!args.hellaswag.empty()) {
    eval_multiple_choice(args, model, resolved, device);
  } else if (args.text || !args.ids.empty()) {
    eval_sequence(args, model, resolved, device);
  } else {
    eval_shards(args, model, resolved, device);
  }
}

}  // namespace

void register_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  auto* eval = app.add_subcommand(
      "eval",
      "Next-token loss and perplexity of a model on token shards, a text or token ids, or its HellaSwag accuracy "
      "(no training)");
  add_examples(*eval, {"muonlab eval runs/cpu-small",
                       "muonlab eval --model runs/cpu-small --data 'data/fineweb10B/fineweb_val_*.bin' --tokens 0",
                       "muonlab eval --model runs/cpu-small --text \"The city of\" --json",
                       "muonlab eval runs/gpt2-small --hellaswag hellaswag_val.jsonl"});
  args->model.add_to(*eval, /*with_model_file=*/true, /*with_device=*/true);
  args->model.add_positional_model(*eval);
  eval->add_option("--data", args->data,
                   "Token shards (file, folder or glob); default for a run folder: its validation split");
  eval->add_option("--batch-size", args->batch_size, "Sequences per batch (default: the run's, else 8)");
  eval->add_option("--seq-len", args->seq_len, "Tokens per sequence (default: the run's, else the model's block_size)");
  eval->add_option("--tokens", args->tokens,
                   "Tokens to evaluate, in whole batches from the split's start; 0: the whole split "
                   "(default: the run's run.eval_tokens, else 0)");
  eval->add_option("--text", args->text,
                   "Evaluate this text instead, as one sequence (longer than the context: in windows, --stride)");
  eval->add_option("--ids", args->ids, "Evaluate these token ids instead (e.g. 464,3290,318)");
  eval->add_option("--stride", args->stride,
                   "For a --text/--ids longer than the context: window starts this many tokens apart, each token "
                   "scored once (default: half the context)");
  eval->add_option("--hellaswag", args->hellaswag,
                   "Score multiple-choice items instead: HellaSwag's JSON Lines (ctx, endings, label) or Hugging "
                   "Face's Parquet copy (.parquet), each ending by its loss after the context; prints acc_norm (lowest mean loss per token, llm.c's figure) "
                   "and acc (lowest summed loss)");
  eval->add_option("--items", args->items, "For --hellaswag: score only the first N items (default 0: all)");
  eval->add_option("--tokenizer", args->tokenizer,
                   "For --text and --hellaswag: gpt2, byte, a folder, or a tokenizer.json (default: the run's "
                   "data.tokenizer, else gpt2)");
  eval->add_option("--dtype", args->dtype, "fp32, bf16 (autocast) or auto (default: the run's run.dtype, else fp32)");
  eval->add_flag("--json", args->json,
                 "Print one JSON object: loss, perplexity, tokens, precision (and token_losses for --text/--ids)");
  eval->callback([args] { run_eval(*args); });
}

}  // namespace muonlab::cli
