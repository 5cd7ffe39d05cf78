// The tokenizer interface the data pipeline, the trainer and `generate` use,
// and the factory that picks one by name: "gpt2" (OpenAI's byte-level BPE,
// files from scripts/fetch-data), "byte" (no files), or a folder holding
// encoder.json and vocab.bpe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace muonlab::data {

using TokenIds = std::vector<int32_t>;

inline constexpr std::string_view kEndOfText = "<|endoftext|>";

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::string name() const = 0;
  virtual int vocab_size() const = 0;
  // The id of <|endoftext|>, which separates documents.
  virtual int eot_token() const = 0;

  // Encodes `text` as plain text: a literal "<|endoftext|>" in it stays
  // characters (tiktoken's encode_ordinary). Use this for untrusted text.
  virtual TokenIds encode_ordinary(std::string_view text) const = 0;
  // Fails naming the id if one is outside the vocabulary.
  virtual std::string decode(const TokenIds& ids) const = 0;

  // The special tokens `encode` recognizes in text, as (text, id):
  // "<|endoftext|>" as eot_token() unless a tokenizer has others (a
  // tokenizer.json's special added tokens).
  virtual std::vector<std::pair<std::string, int>> special_tokens() const;

  // As encode_ordinary, but each special token written in the text (by
  // default "<|endoftext|>") becomes its id.
  TokenIds encode(std::string_view text) const;
  // encode_ordinary of each document, spread over `threads` threads of the
  // process-wide WorkerPool (0: every core; at most one per core). Results
  // come back in the documents' order.
  std::vector<TokenIds> encode_documents(const std::vector<std::string>& documents,
                                         int threads = 0) const;
};

// The leftmost of `tokens` (text, id) in `text`, the longest of those that
// start there, as Hugging Face's added vocabulary matches: its position and
// entry, or npos and nullptr.
std::pair<size_t, const std::pair<std::string, int>*> find_first_token(
    std::string_view text, const std::vector<std::pair<std::string, int>>& tokens);

// "gpt2", "byte", a folder with encoder.json and vocab.bpe (OpenAI's
// files), or a Hugging Face tokenizer.json (byte-level BPE, as GPT-2's and
// LLaMA 3's are: hf_tokenizer_json.h), or a folder holding one.
// "gpt2" looks
// in $MUONLAB_DATA_DIR/gpt2, then ./data/gpt2, then beside the binary that
// holds muonlab's code: in it and each folder above it, share/muonlab/gpt2
// (an installed prefix) and data/gpt2 (a source tree around the build
// folder); it says to run scripts/fetch-data when none has the files.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec);

// The folder whose encoder.json and vocab.bpe load_tokenizer(spec) reads:
// the folder `spec` itself, or for "gpt2" the first on its search path that
// holds both; nullopt for "byte" or when no folder has them.
std::optional<std::string> gpt2_files_folder(const std::string& spec);

// The Hugging Face tokenizer.json load_tokenizer(spec) reads: `spec` itself
// (a .json file), or the tokenizer.json of a folder without OpenAI's files;
// nullopt otherwise.
std::optional<std::string> tokenizer_json_file(const std::string& spec);

}  // namespace muonlab::data
