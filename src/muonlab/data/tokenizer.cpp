#include "muonlab/data/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "muonlab/core/errors.h"
#include "muonlab/data/byte_tokenizer.h"
#include "muonlab/data/gpt2_tokenizer.h"

namespace muonlab::data {
namespace fs = std::filesystem;

TokenIds Tokenizer::encode(std::string_view text) const {
  TokenIds ids;
  while (true) {
    size_t special = text.find(kEndOfText);
    TokenIds part = encode_ordinary(text.substr(0, special));
    ids.insert(ids.end(), part.begin(), part.end());
    if (special == std::string_view::npos) break;
    ids.push_back(eot_token());
    text.remove_prefix(special + kEndOfText.size());
  }
  return ids;
}

std::vector<TokenIds> Tokenizer::encode_documents(const std::vector<std::string>& documents,
                                                  int threads) const {
  std::vector<TokenIds> encoded(documents.size());
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min<int>(threads, static_cast<int>(documents.size()));
  // Workers take the next document from a shared counter, so a few long
  // documents do not leave the other threads idle.
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < documents.size(); i = next++) encoded[i] = encode_ordinary(documents[i]);
  };
  if (threads <= 1) {
    work();
    return encoded;
  }
  std::vector<std::thread> workers;
  std::vector<std::exception_ptr> errors(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      try {
        work();
      } catch (...) {
        errors[t] = std::current_exception();
        next = documents.size();
      }
    });
  }
  for (auto& worker : workers) worker.join();
  for (auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
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
#ifdef MUONLAB_SOURCE_DIR
  dirs.push_back(fs::path(MUONLAB_SOURCE_DIR) / "data" / "gpt2");
#endif
  return dirs;
}

std::unique_ptr<Tokenizer> load_installed_gpt2() {
  std::vector<fs::path> dirs = gpt2_search_path();
  for (const auto& dir : dirs) {
    if (has_gpt2_files(dir)) return Gpt2Tokenizer::load(dir.string());
  }
  std::string looked;
  for (const auto& dir : dirs) looked += (looked.empty() ? "" : ", ") + dir.string();
  fail("GPT-2 tokenizer files (encoder.json, vocab.bpe) not found in {}: run scripts/fetch-data, "
       "or pass a folder that holds them",
       looked);
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec) {
  if (spec == "byte") return std::make_unique<ByteTokenizer>();
  if (spec == "gpt2") return load_installed_gpt2();
  if (fs::is_directory(spec)) {
    if (!has_gpt2_files(spec)) fail("tokenizer folder '{}' lacks encoder.json or vocab.bpe", spec);
    return Gpt2Tokenizer::load(spec);
  }
  fail("unknown tokenizer '{}': expected gpt2, byte, or a folder with encoder.json and vocab.bpe", spec);
}

}  // namespace muonlab::data
