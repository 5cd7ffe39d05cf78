// `muonlab data`: tokenize text from the shell, prepare token shards, and
// check shards (the project's or llm.c's FineWeb shards).
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

#include <algorithm>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/cli/list_args.h"
#include "muonlab/cli/number_checks.h"
#include "muonlab/cli/progress_bar.h"
#include "muonlab/core/errors.h"
#include "muonlab/data/prepare_shards.h"
#include "muonlab/data/text_documents.h"
#include "muonlab/data/token_loader.h"
#include "muonlab/data/token_shard.h"
#include "muonlab/data/tokenizer.h"

namespace muonlab::cli {
namespace {

std::string read_stdin() {
  std::cin >> std::noskipws;
  return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
}

void add_tokenizer_option(CLI::App& command, std::string& tokenizer) {
  command.add_option("--tokenizer", tokenizer,
                     "gpt2, byte, a folder with encoder.json and vocab.bpe, or a Hugging Face tokenizer.json "
                     "(or its folder)")
      ->capture_default_str();
}

struct EncodeArgs {
  std::string tokenizer = "gpt2";
  bool json = false;
  bool ordinary = false;
};

void run_encode(const EncodeArgs& args) {
  auto tokenizer = data::load_tokenizer(args.tokenizer);
  std::string text = read_stdin();
  data::TokenIds ids = args.ordinary ? tokenizer->encode_ordinary(text) : tokenizer->encode(text);
  if (args.json) {
    std::cout << fmt::format("[{}]", fmt::join(ids, ", ")) << "\n";
  } else {
    std::cout << fmt::format("{}", fmt::join(ids, " ")) << "\n";
  }
}

void run_decode(const std::string& tokenizer_spec) {
  auto tokenizer = data::load_tokenizer(tokenizer_spec);
  std::vector<int64_t> wide = parse_token_ids(read_stdin(), "token ids on stdin");
  data::TokenIds ids;
  for (int64_t id : wide) {
    if (id < 0 || id >= tokenizer->vocab_size()) {
      fail("token id {} is outside the {} vocabulary (0-{})", id, tokenizer->name(), tokenizer->vocab_size() - 1);
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  std::cout << tokenizer->decode(ids) << std::flush;
}

std::string megabytes(uint64_t bytes) { return fmt::format("{:.1f} MB", bytes / 1e6); }

void print_split(const char* name, const data::SplitSummary& split) {
  double bytes_per_token = split.tokens == 0 ? 0 : static_cast<double>(split.bytes) / split.tokens;
  std::cout << fmt::format("{:<6} {:>7} documents  {:>11} tokens  {:>9}  {:.2f} bytes/token  {} shard(s)\n", name,
                           split.documents, split.tokens, megabytes(split.bytes), bytes_per_token,
                           split.shards.size());
}

void run_prepare(data::PrepareOptions options, const std::string& tokenizer_spec) {
  auto tokenizer = data::load_tokenizer(tokenizer_spec);
  ProgressBar bar("prepare");
  auto stage_start = std::chrono::steady_clock::now();
  auto stage = data::PrepareProgress::Stage::kListing;
  auto summary = data::prepare_shards(*tokenizer, options, [&](const data::PrepareProgress& progress) {
    if (progress.stage != stage) {
      stage = progress.stage;
      stage_start = std::chrono::steady_clock::now();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stage_start).count();
    const std::string rate = fmt::format("{:.1f} MB/s", progress.done / 1e6 / std::max(seconds, 1e-9));
    std::string detail;
    switch (progress.stage) {
      case data::PrepareProgress::Stage::kListing:
        detail = fmt::format("listing: {} of {} files", progress.done, progress.total);
        break;
      case data::PrepareProgress::Stage::kCheckingDuplicates:
        detail = fmt::format("duplicates: {} of {}, {}", megabytes(progress.done), megabytes(progress.total), rate);
        break;
      case data::PrepareProgress::Stage::kEncoding:
        detail = fmt::format("encoding: {} of {}, {}, {} tokens", megabytes(progress.done), megabytes(progress.total),
                             rate, progress.tokens);
        break;
    }
    bar.update(progress.done, progress.total, detail);
  });
  bar.finish();
  std::cout << fmt::format("tokenizer {} (vocab {}), shards in {}\n", tokenizer->name(), tokenizer->vocab_size(),
                           options.out_dir);
  print_split("train", summary.train);
  print_split("val", summary.val);
  if (summary.duplicates_dropped + summary.empty_dropped > 0) {
    std::cout << fmt::format("dropped {} duplicate and {} empty document(s)\n", summary.duplicates_dropped,
                             summary.empty_dropped);
  }
  if (summary.literal_end_of_text > 0 && options.text.separator.empty()) {
    std::cout << fmt::format("note: {} document(s) hold the literal text {}, encoded as its characters; if it "
                             "separates documents there, prepare again with --separator '{}' --force\n",
                             summary.literal_end_of_text, data::kEndOfText, data::kEndOfText);
  }
  uint64_t bytes = summary.train.bytes + summary.val.bytes;
  std::cout << fmt::format("{:.2f} s, {:.1f} MB/s; summary in {}\n", summary.seconds,
                           bytes / 1e6 / std::max(summary.seconds, 1e-9), summary.meta_path);
}

struct InfoArgs {
  std::vector<std::string> specs;
  std::string tokenizer;
};

// Reads every token of every shard: header, size and (with a tokenizer) id range.
void run_info(const InfoArgs& args) {
  int64_t vocab = 0, eot = -1;
  if (!args.tokenizer.empty()) {
    auto tokenizer = data::load_tokenizer(args.tokenizer);
    vocab = tokenizer->vocab_size();
    eot = tokenizer->eot_token();
  }
  uint64_t total_tokens = 0, total_documents = 0, files = 0;
  for (const auto& spec : args.specs) {
    for (const auto& path : data::find_shards(spec)) {
      data::TokenShard shard(path);
      uint64_t documents = 0;
      uint32_t max_id = 0;
      for (uint64_t i = 0; i < shard.size(); ++i) {
        const uint32_t id = shard[i];
        if (vocab > 0 && id >= vocab) {
          fail("shard '{}': token {} at position {} is outside the vocabulary (vocab size {})", path, id, i, vocab);
        }
        max_id = std::max(max_id, id);
        documents += (id == eot);
      }
      std::cout << fmt::format("{}  {} tokens  max id {}{}\n", path, shard.size(), max_id,
                               eot >= 0 ? fmt::format("  {} documents", documents) : "");
      total_tokens += shard.size();
      total_documents += documents;
      ++files;
    }
  }
  std::cout << fmt::format("{} shard(s), {} tokens{}\n", files, total_tokens,
                           eot >= 0 ? fmt::format(", {} documents", total_documents) : "");
}

struct PeekArgs {
  std::vector<std::string> inputs;
  data::TextInputOptions text;
  int64_t max = 3;
  bool json = false;
};

// The documents `data prepare` would read from the same inputs, as it reads
// them: to check the field, the separator, or what a row holds, before
// preparing a corpus.
void run_peek(const PeekArgs& args) {
  const data::TextCorpus corpus = data::list_text_documents(args.inputs, args.text);
  data::TextDocumentReader reader(corpus);
  const auto count = static_cast<int64_t>(corpus.documents.size());
  const int64_t shown = args.max > 0 ? std::min(args.max, count) : count;
  for (int64_t i = 0; i < shown; ++i) {
    const data::TextDocument& document = corpus.documents[static_cast<size_t>(i)];
    const std::string text = reader.read(document);
    if (args.json) {
      std::cout << nlohmann::ordered_json{{"where", reader.where(document)}, {"text", text}}.dump(
                       -1, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
    } else {
      std::cout << "== " << reader.where(document) << " (" << text.size() << " bytes)\n" << text << "\n";
    }
  }
  if (!args.json) std::cout << fmt::format("== {} of {} documents in {} file(s)\n", shown, count, corpus.files.size());
}

}  // namespace

void register_data(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Tokenize text, prepare and check token shards");
  add_examples(*data, {
                    "muonlab data prepare data/corpus --out data/shards --name corpus",
                    "muonlab data info data/shards"});
  data->require_subcommand(1);

  auto encode_args = std::make_shared<EncodeArgs>();
  auto* encode = data->add_subcommand("encode", "Text on stdin -> token ids on stdout (space-separated)");
  add_examples(*encode, {
                    "echo 'Hello world' | muonlab data encode",
                    "echo 'Hello world' | muonlab data encode --tokenizer byte"});
  add_tokenizer_option(*encode, encode_args->tokenizer);
  encode->add_flag("--json", encode_args->json, "Print a JSON array");
  encode->add_flag("--ordinary", encode_args->ordinary, "Treat <|endoftext|> in the text as plain characters");
  encode->callback([encode_args] { run_encode(*encode_args); });

  auto decode_tokenizer = std::make_shared<std::string>("gpt2");
  auto* decode = data->add_subcommand("decode", "Token ids on stdin (spaces, commas or a JSON array) -> text");
  add_examples(*decode, {
                    "echo 15496 995 | muonlab data decode"});
  add_tokenizer_option(*decode, *decode_tokenizer);
  decode->callback([decode_tokenizer] { run_decode(*decode_tokenizer); });

  auto prepare_args = std::make_shared<data::PrepareOptions>();
  auto prepare_tokenizer = std::make_shared<std::string>("gpt2");
  auto* prepare =
      data->add_subcommand("prepare",
                           "Text, JSON Lines or Parquet files, or folders of them -> llm.c token shards");
  add_examples(*prepare, {
                    "muonlab data prepare data/corpus --out data/shards --name corpus",
                    "muonlab data prepare my-texts/ --out data/shards-byte --name mine --tokenizer byte",
                    "muonlab data prepare fineweb-sample.jsonl --out data/fineweb --name fineweb",
                    "muonlab data prepare fineweb-edu/sample/10BT/000_00000.parquet --out data/edu --name edu",
                    "muonlab data prepare TinyStoriesV2-GPT4-valid.txt --separator '<|endoftext|>' --out data/ts "
                    "--name tinystories"});
  prepare->add_option("inputs", prepare_args->inputs,
                      "Files and folders: a .txt file is one document (or several, with --separator); a .jsonl "
                      "(or .json) file one per line, its \"text\" field; a .parquet file one per row, its \"text\" "
                      "column; each compressed or not (.gz, .zst); a folder its files of these kinds")
      ->required();
  prepare->add_option("--separator", prepare_args->text.separator,
                      "Text that separates documents within a .txt file, e.g. '<|endoftext|>' (TinyStories); each "
                      "piece is trimmed of surrounding whitespace");
  prepare->add_option("--field,--json-field", prepare_args->text.field,
                      "The field of each JSON line, or the Parquet column, that holds the documents")
      ->capture_default_str();
  prepare->add_option("--out", prepare_args->out_dir, "Output folder")->required();
  prepare->add_option("--name", prepare_args->name, "Shard name prefix")->capture_default_str();
  add_tokenizer_option(*prepare, *prepare_tokenizer);
  prepare->add_option("--val-fraction", prepare_args->val_fraction, "Fraction of documents for validation")
      ->capture_default_str();
  prepare->add_option("--shard-tokens", prepare_args->shard_tokens, "Tokens per shard")->capture_default_str();
  prepare->add_option("--seed", prepare_args->seed, "Seed of the validation draw")->capture_default_str();
  prepare->add_option("--threads", prepare_args->threads, "Encoding threads (0: every core)")->check(kNonNegativeCount);
  prepare->add_flag("--force", prepare_args->replace_existing, "Replace existing shards of the same name");
  prepare->callback([prepare_args, prepare_tokenizer] { run_prepare(*prepare_args, *prepare_tokenizer); });

  auto peek_args = std::make_shared<PeekArgs>();
  auto* peek = data->add_subcommand("peek", "Print the first documents `data prepare` would read from the inputs");
  add_examples(*peek, {
                    "muonlab data peek fineweb-edu/sample/10BT/000_00000.parquet",
                    "muonlab data peek sample.jsonl.zst --field content --max 1",
                    "muonlab data peek TinyStoriesV2-GPT4-valid.txt --separator '<|endoftext|>' --json --max 0"});
  peek->add_option("inputs", peek_args->inputs, "Files and folders, as data prepare takes them")->required();
  peek->add_option("--separator", peek_args->text.separator, "As data prepare's --separator");
  peek->add_option("--field,--json-field", peek_args->text.field, "As data prepare's --field")->capture_default_str();
  peek->add_option("--max", peek_args->max, "Documents to print (0: every one)")
      ->check(kNonNegativeCount)
      ->capture_default_str();
  peek->add_flag("--json", peek_args->json, "A JSON object per document: where (file, line or row) and text");
  peek->callback([peek_args] { run_peek(*peek_args); });

  auto info_args = std::make_shared<InfoArgs>();
  auto* info = data->add_subcommand("info", "Validate shards and print their token and document counts");
  add_examples(*info, {
                    "muonlab data info data/shards",
                    "muonlab data info data/shards/corpus_val_000000.bin"});
  info->add_option("shards", info_args->specs, "Shard files, folders or glob patterns")->required();
  info->add_option("--tokenizer", info_args->tokenizer,
                   "Check ids against this tokenizer's vocabulary and count its <|endoftext|>");
  info->callback([info_args] { run_info(*info_args); });
}

}  // namespace muonlab::cli
