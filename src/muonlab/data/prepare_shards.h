// `muonlab data prepare`: text documents -> token shards in llm.c's format.
// Each document is preceded by <|endoftext|> (llm.c's FineWeb layout), shards
// are filled to shard_tokens and a document may continue into the next one.
// The validation split is a seeded choice of whole documents, after exact
// duplicates are dropped, so no text is in both splits.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "muonlab/data/text_documents.h"
#include "muonlab/data/tokenizer.h"

namespace muonlab::data {

struct PrepareOptions {
  std::vector<std::string> inputs;  // files and folders (see text_documents.h)
  TextInputOptions text;            // a separator within .txt files, the field of JSON Lines
  std::string out_dir;
  std::string name = "corpus";      // shards are <name>_val_000000.bin, <name>_train_000000.bin, ...
  double val_fraction = 0.05;       // of the documents; 0 writes no validation split
  uint64_t shard_tokens = 100'000'000;
  uint64_t seed = 1337;
  int threads = 0;                  // 0: every core
  bool replace_existing = false;    // else existing <name>_* shards are an error
};

struct SplitSummary {
  uint64_t documents = 0;
  uint64_t bytes = 0;
  uint64_t tokens = 0;  // <|endoftext|> included
  std::vector<std::string> shards;
};

struct PrepareSummary {
  SplitSummary train;
  SplitSummary val;
  uint64_t duplicates_dropped = 0;
  uint64_t empty_dropped = 0;
  // Documents holding the literal text "<|endoftext|>", encoded as the
  // characters it is made of: a hint that they join several documents.
  uint64_t literal_end_of_text = 0;
  double seconds = 0;
  std::string meta_path;
};

// Where a prepare is: listing the inputs' documents (a Parquet or
// compressed file is read whole for that), reading them all for empty and
// duplicate ones, then encoding the splits. Big corpora spend minutes in
// the first two.
struct PrepareProgress {
  enum class Stage { kListing, kCheckingDuplicates, kEncoding };
  Stage stage = Stage::kListing;
  uint64_t done = 0;   // listing: files listed; after: bytes read
  uint64_t total = 0;  // listing: files; after: bytes
  uint64_t tokens = 0;  // encoded so far
};

PrepareSummary prepare_shards(const Tokenizer& tokenizer, const PrepareOptions& options,
                              const std::function<void(const PrepareProgress&)>& on_progress = {});

// "<out_dir>/<name>_<split>_000000.bin"-style path of shard `index`.
std::string shard_path(const std::string& out_dir, const std::string& name, const std::string& split,
                       size_t index);

}  // namespace muonlab::data
