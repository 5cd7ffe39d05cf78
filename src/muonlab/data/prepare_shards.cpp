#include "muonlab/data/prepare_shards.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/data/shard_header.h"
#include "muonlab/data/shard_writer.h"
#include "muonlab/data/shuffle.h"
#include "muonlab/data/text_documents.h"

namespace muonlab::data {
namespace fs = std::filesystem;

std::string shard_path(const std::string& out_dir, const std::string& name, const std::string& split,
                       size_t index) {
  return (fs::path(out_dir) / fmt::format("{}_{}_{:06d}.bin", name, split, index)).string();
}

namespace {

// Documents are encoded this many bytes at a time, so memory stays bounded
// however large the corpus is.
constexpr uint64_t kChunkBytes = 16ull << 20;
// How often the duplicate check reports its progress, in bytes read.
constexpr uint64_t kProgressBytes = 16ull << 20;

void check_options(const PrepareOptions& options) {
  if (options.inputs.empty()) fail("data prepare needs at least one input file or folder");
  if (options.out_dir.empty()) fail("data prepare needs an output folder (--out)");
  if (options.name.empty() || options.name.find('/') != std::string::npos) {
    fail("shard name '{}' must be non-empty and contain no '/'", options.name);
  }
  if (!(options.val_fraction >= 0 && options.val_fraction < 1)) {
    fail("validation fraction {} is outside [0, 1)", options.val_fraction);
  }
  if (options.shard_tokens < 1 || options.shard_tokens > kMaxShardTokens) {
    fail("shard size {} tokens is outside [1, {}]", options.shard_tokens, kMaxShardTokens);
  }
}

// Refuses to mix new shards with old ones of the same name (a reader's glob
// would pick up both), unless told to replace them.
void clear_old_shards(const PrepareOptions& options) {
  fs::create_directories(options.out_dir);
  std::vector<fs::path> old;
  for (const auto& entry : fs::directory_iterator(options.out_dir)) {
    std::string file = entry.path().filename().string();
    bool ours = file.rfind(options.name + "_train_", 0) == 0 || file.rfind(options.name + "_val_", 0) == 0;
    if (ours && entry.path().extension() == ".bin") old.push_back(entry.path());
  }
  if (old.empty()) return;
  std::sort(old.begin(), old.end());
  if (!options.replace_existing) {
    fail("'{}' already holds {} shard(s) named {}_*, such as '{}': pass --force to replace them",
         options.out_dir, old.size(), options.name, old.front().filename().string());
  }
  for (const auto& path : old) fs::remove(path);
}

struct Selection {
  std::vector<TextDocument> train, val;
  uint64_t duplicates = 0, empty = 0, literal_end_of_text = 0;
};

// Drops empty documents and exact duplicates (same size and 64-bit hash of
// the text), then draws the validation documents with the seed. Reading
// every document here also finds a bad JSON line before any shard is
// written.
Selection select_documents(const TextCorpus& corpus, const PrepareOptions& options, PrepareProgress& progress,
                           const std::function<void(const PrepareProgress&)>& on_progress) {
  Selection selection;
  std::vector<TextDocument> unique;
  std::unordered_map<size_t, uint64_t> size_of_hash;
  TextDocumentReader reader(corpus);
  progress.stage = PrepareProgress::Stage::kCheckingDuplicates;
  progress.done = 0;
  progress.total = corpus.total_bytes();
  uint64_t reported = 0;
  for (const auto& document : corpus.documents) {
    progress.done += document.bytes;
    if (on_progress && progress.done - reported >= kProgressBytes) {
      on_progress(progress);
      reported = progress.done;
    }
    const std::string text = reader.read(document);
    if (text.empty()) {
      ++selection.empty;
      continue;
    }
    selection.literal_end_of_text += text.find(kEndOfText) != std::string::npos;
    size_t hash = std::hash<std::string>{}(text);
    auto [it, inserted] = size_of_hash.emplace(hash, text.size());
    if (!inserted && it->second == text.size()) {
      ++selection.duplicates;
      continue;
    }
    unique.push_back(document);
  }
  if (on_progress) on_progress(progress);
  if (unique.empty()) fail("no documents to prepare: all {} documents are empty", corpus.documents.size());

  size_t val_count = 0;
  if (options.val_fraction > 0) {
    val_count = std::max<size_t>(1, static_cast<size_t>(std::llround(options.val_fraction * unique.size())));
    if (val_count >= unique.size()) {
      fail("empty split: {} distinct document(s) cannot give {} for validation and the rest for training; "
           "add documents or lower --val-fraction{}",
           unique.size(), val_count,
           unique.size() == 1 && options.text.separator.empty() &&
                   corpus.formats[unique.front().file] == TextFileFormat::kText
               ? " (a text file is one document: --separator cuts one holding several)"
               : "");
    }
  }
  std::vector<bool> is_val(unique.size(), false);
  std::vector<uint32_t> order = seeded_permutation(static_cast<uint32_t>(unique.size()), options.seed);
  for (size_t i = 0; i < val_count; ++i) is_val[order[i]] = true;
  for (size_t i = 0; i < unique.size(); ++i) (is_val[i] ? selection.val : selection.train).push_back(unique[i]);
  return selection;
}

// Streams a split's tokens into shards of shard_tokens each: a shard is
// published when full, the last one by finish().
class ShardRoller {
 public:
  ShardRoller(const PrepareOptions& options, std::string split, SplitSummary& summary, const ShardFormat& format)
      : options_(options), split_(std::move(split)), summary_(summary), format_(format) {}

  void add(int32_t eot, const TokenIds& document) {
    append(&eot, 1);
    append(document.data(), document.size());
    summary_.tokens += document.size() + 1;
  }

  void finish() {
    if (shard_) publish();
  }

 private:
  void append(const int32_t* tokens, size_t count) {
    while (count > 0) {
      if (!shard_) shard_.emplace(shard_path(options_.out_dir, options_.name, split_, summary_.shards.size()), format_);
      const size_t take = static_cast<size_t>(std::min<uint64_t>(count, options_.shard_tokens - shard_->tokens()));
      shard_->append(tokens, take);
      tokens += take;
      count -= take;
      if (shard_->tokens() == options_.shard_tokens) publish();
    }
  }

  void publish() {
    shard_->finish();
    summary_.shards.push_back(shard_->path());
    shard_.reset();
  }

  const PrepareOptions& options_;
  std::string split_;
  SplitSummary& summary_;
  const ShardFormat& format_;
  std::optional<ShardFileWriter> shard_;  // the shard being filled, if any
};

void encode_split(const Tokenizer& tokenizer, const PrepareOptions& options, const std::string& split,
                  const TextCorpus& corpus, const std::vector<TextDocument>& documents, SplitSummary& summary,
                  PrepareProgress& progress, const std::function<void(const PrepareProgress&)>& on_progress) {
  ShardRoller roller(options, split, summary, shard_format_for_vocab(tokenizer.vocab_size()));
  TextDocumentReader reader(corpus);
  for (size_t begin = 0; begin < documents.size();) {
    std::vector<std::string> texts;
    uint64_t chunk_bytes = 0, file_bytes = 0;
    for (; begin < documents.size() && (texts.empty() || chunk_bytes < kChunkBytes); ++begin) {
      texts.push_back(reader.read(documents[begin]));
      chunk_bytes += texts.back().size();
      file_bytes += documents[begin].bytes;
    }
    std::vector<TokenIds> encoded = tokenizer.encode_documents(texts, options.threads);
    for (const auto& document : encoded) {
      roller.add(tokenizer.eot_token(), document);
      progress.tokens += document.size() + 1;
    }
    summary.documents += texts.size();
    summary.bytes += chunk_bytes;
    progress.done += file_bytes;
    if (on_progress) on_progress(progress);
  }
  roller.finish();
}

void write_meta(const Tokenizer& tokenizer, const PrepareOptions& options, PrepareSummary& summary) {
  auto split_json = [](const SplitSummary& split) {
    return nlohmann::json{{"documents", split.documents}, {"bytes", split.bytes}, {"tokens", split.tokens},
                          {"shards", split.shards.size()}};
  };
  const ShardFormat& format = shard_format_for_vocab(tokenizer.vocab_size());
  nlohmann::json meta = {{"format", fmt::format("llm.c token shards, magic {}, version {}, uint{}", format.magic,
                                                format.version, 8 * format.token_bytes)},
                         {"tokenizer", tokenizer.name()},
                         {"vocab_size", tokenizer.vocab_size()},
                         {"eot_token", tokenizer.eot_token()},
                         {"seed", options.seed},
                         {"val_fraction", options.val_fraction},
                         {"train", split_json(summary.train)},
                         {"val", split_json(summary.val)}};
  summary.meta_path = (fs::path(options.out_dir) / (options.name + "_meta.json")).string();
  write_text_file_atomically(summary.meta_path, meta.dump(2) + "\n");
}

}  // namespace

PrepareSummary prepare_shards(const Tokenizer& tokenizer, const PrepareOptions& options,
                              const std::function<void(const PrepareProgress&)>& on_progress) {
  auto start = std::chrono::steady_clock::now();
  check_options(options);
  PrepareProgress progress;
  const TextCorpus corpus = list_text_documents(options.inputs, options.text, [&](size_t listed, size_t files) {
    progress.done = listed;
    progress.total = files;
    if (on_progress) on_progress(progress);
  });
  Selection selection = select_documents(corpus, options, progress, on_progress);
  clear_old_shards(options);

  PrepareSummary summary;
  summary.duplicates_dropped = selection.duplicates;
  summary.empty_dropped = selection.empty;
  summary.literal_end_of_text = selection.literal_end_of_text;
  progress.stage = PrepareProgress::Stage::kEncoding;
  progress.done = progress.total = 0;
  for (const auto* split : {&selection.val, &selection.train}) {
    for (const auto& document : *split) progress.total += document.bytes;
  }
  encode_split(tokenizer, options, "val", corpus, selection.val, summary.val, progress, on_progress);
  encode_split(tokenizer, options, "train", corpus, selection.train, summary.train, progress, on_progress);
  write_meta(tokenizer, options, summary);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace muonlab::data
