// The documents `data prepare` reads: each named file is one document, and a
// folder contributes its *.txt files, recursively. Sorted by path, so the
// same inputs always give the same shards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace muonlab::data {

struct TextDocument {
  std::string path;
  uint64_t bytes = 0;
};

// Fails naming the input that does not exist, or if no document is found.
std::vector<TextDocument> list_text_documents(const std::vector<std::string>& inputs);

}  // namespace muonlab::data
