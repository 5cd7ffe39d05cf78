#include "muonlab/data/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>

#include "muonlab/core/code_location.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/nearest_name.h"
#include "muonlab/core/worker_pool.h"
#include "muonlab/data/byte_tokenizer.h"
#include "muonlab/data/gpt2_tokenizer.h"
#include "muonlab/data/hf_tokenizer_json.h"

namespace muonlab::data {
namespace fs = std::filesystem;

std::vector<std::pair<std::string, int>> Tokenizer::special_tokens() const {
  return {{std::string(kEndOfText), eot_token()}};
}

std::pair<size_t, const std::pair<std::string, int>*> find_first_token(
    std::string_view text, const std::vector<std::pair<std::string, int>>& tokens) {
  size_t at = std::string_view::npos;
  const std::pair<std::string, int>* found = nullptr;
  for (const auto& token : tokens) {
    const size_t position = text.find(token.first);
    if (position == std::string_view::npos) continue;
    if (position < at || (position == at && token.first.size() > found->first.size())) {
      at = position;
      found = &token;
    }
  }
  return {at, found};
}

TokenIds Tokenizer::encode(std::string_view text) const {
  const auto specials = special_tokens();
  TokenIds ids;
  while (true) {
    const auto [at, found] = find_first_token(text, specials);
    TokenIds part = encode_ordinary(text.substr(0, at));
    ids.insert(ids.end(), part.begin(), part.end());
    if (found == nullptr) break;
    ids.push_back(found->second);
    text.remove_prefix(at + found->first.size());
  }
  return ids;
}

std::vector<TokenIds> Tokenizer::encode_documents(const std::vector<std::string>& documents,
                                                  int threads) const {
  std::vector<TokenIds> encoded(documents.size());
  // Threads of the shared pool keep their merge caches between calls. Each
  // takes the next document from a shared counter, so a few long documents
  // do not leave the others idle; a failure stops everyone's next pick.
  WorkerPool& pool = WorkerPool::shared();
  if (threads <= 0) threads = pool.max_workers();
  threads = static_cast<int>(std::min<size_t>(threads, std::max<size_t>(1, documents.size())));
  std::atomic<size_t> next{0};
  pool.run(threads, [&] {
    try {
      for (size_t i = next++; i < documents.size(); i = next++) encoded[i] = encode_ordinary(documents[i]);
    } catch (...) {
      next = documents.size();
      throw;
    }
  });
  return encoded;
}

namespace {

bool has_gpt2_files(const fs::path& dir) {
  return fs::is_regular_file(dir / "encoder.json") && fs::is_regular_file(dir / "vocab.bpe");
}

std::vector<fs::path> gpt2_search_path() {
  std::vector<fs::path> dirs;
  if (const char* data_dir = std::getenv("MUONLAB_DATA_DIR")) dirs.push_back(fs::path(data_dir) / "gpt2");
  dirs.push_back(fs::path("data") / "gpt2");
  // Beside the binary: an installed prefix's share/muonlab/gpt2 (bin/ and
  // lib/ sit one level below it), or a source tree's data/gpt2 above a
  // build folder inside it.
  for (const auto& dir : code_folders()) {
    dirs.push_back(dir / "share" / "muonlab" / "gpt2");
    dirs.push_back(dir / "data" / "gpt2");
  }
  return dirs;
}

std::unique_ptr<Tokenizer> load_installed_gpt2() {
  if (auto folder = gpt2_files_folder("gpt2")) return Gpt2Tokenizer::load(*folder);
  std::string looked;
  for (const auto& dir : gpt2_search_path()) looked += (looked.empty() ? "" : ", ") + dir.string();
  fail("GPT-2 tokenizer files (encoder.json, vocab.bpe) not found in {}: run scripts/fetch-data, "
       "or pass a folder that holds them",
       looked);
}

}  // namespace

std::optional<std::string> gpt2_files_folder(const std::string& spec) {
  if (spec == "byte") return std::nullopt;
  std::vector<fs::path> candidates = spec == "gpt2" ? gpt2_search_path() : std::vector<fs::path>{spec};
  for (const auto& dir : candidates) {
    if (has_gpt2_files(dir)) return dir.string();
  }
  return std::nullopt;
}

std::optional<std::string> tokenizer_json_file(const std::string& spec) {
  if (spec == "byte" || spec == "gpt2") return std::nullopt;
  if (fs::is_regular_file(spec) && fs::path(spec).extension() == ".json") return spec;
  const fs::path inside = fs::path(spec) / "tokenizer.json";
  if (fs::is_directory(spec) && !has_gpt2_files(spec) && fs::is_regular_file(inside)) return inside.string();
  return std::nullopt;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec) {
  if (spec == "byte") return std::make_unique<ByteTokenizer>();
  if (spec == "gpt2") return load_installed_gpt2();
  if (const auto json = tokenizer_json_file(spec)) return load_tokenizer_json(*json);
  if (fs::is_directory(spec)) {
    if (!has_gpt2_files(spec)) fail("tokenizer folder '{}' holds neither encoder.json and vocab.bpe nor a tokenizer.json", spec);
    return Gpt2Tokenizer::load(spec);
  }
  fail("unknown tokenizer '{}'{}: expected gpt2, byte, a folder with encoder.json and vocab.bpe, or a Hugging Face "
       "tokenizer.json (or a folder holding one)",
       spec, did_you_mean(spec, {"gpt2", "byte"}));
}

}  // namespace muonlab::data
