// Helpers for the data layer's tests: a private scratch folder per test, the
// committed test data, and the GPT-2 tokenizer loaded once per process.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "muonlab/data/token_loader.h"
#include "muonlab/data/tokenizer.h"
#include "muonlab/core/remove_tree.h"

namespace muonlab::testing {

// A fresh folder under /tmp, removed with everything in it at scope end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "muonlab_data_XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    if (made == nullptr) {
      throw std::runtime_error("cannot make a scratch folder like " + pattern + ": " + std::strerror(errno) +
                               " (set TMPDIR to a writable folder)");
    }
    path_ = made;
  }
  ~ScratchDir() {
    std::error_code ignored;
    remove_tree(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string file(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// tests/data/<relative>
inline std::string test_data(const std::string& relative) {
  return std::string(MUONLAB_TEST_DATA_DIR) + "/" + relative;
}

// OpenAI's GPT-2 tokenizer from data/gpt2 (scripts/fetch-data puts it there).
inline const data::Tokenizer& gpt2() {
  static const auto tokenizer = data::load_tokenizer("gpt2");
  return *tokenizer;
}

inline data::LoaderOptions loader_options(int64_t batch_size, int64_t seq_len) {
  data::LoaderOptions options;
  options.batch_size = batch_size;
  options.seq_len = seq_len;
  return options;
}

}  // namespace muonlab::testing
