#include "muonlab/data/text_documents.h"

#include <algorithm>
#include <filesystem>

#include "muonlab/core/errors.h"

namespace muonlab::data {
namespace fs = std::filesystem;

std::vector<TextDocument> list_text_documents(const std::vector<std::string>& inputs) {
  std::vector<TextDocument> documents;
  for (const auto& input : inputs) {
    if (fs::is_directory(input)) {
      for (const auto& entry : fs::recursive_directory_iterator(input)) {
        if (entry.is_regular_file() && entry.path().extension() == ".txt") {
          documents.push_back({entry.path().string(), static_cast<uint64_t>(entry.file_size())});
        }
      }
    } else if (fs::is_regular_file(input)) {
      documents.push_back({input, static_cast<uint64_t>(fs::file_size(input))});
    } else {
      fail("input '{}' is neither a text file nor a folder", input);
    }
  }
  if (documents.empty()) fail("no documents found: the inputs hold no .txt files");
  std::sort(documents.begin(), documents.end(),
            [](const TextDocument& a, const TextDocument& b) { return a.path < b.path; });
  documents.erase(std::unique(documents.begin(), documents.end(),
                              [](const TextDocument& a, const TextDocument& b) { return a.path == b.path; }),
                  documents.end());
  return documents;
}

}  // namespace muonlab::data
