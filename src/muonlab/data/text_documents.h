// The documents `data prepare` reads. Each input is a file, or a folder
// whose *.txt, *.jsonl and *.parquet files are read (compressed or not),
// recursively. A file holds
// - .txt: one document; or, given a separator (TinyStories' files separate
//   stories by "<|endoftext|>"), the pieces between separators, each
//   trimmed of the whitespace around it;
// - .jsonl (or a .json file named as an input): JSON Lines, one object per
//   line whose string field `field` is the document ("text", as Hugging
//   Face datasets' to_json and FineWeb's JSON Lines write it); blank lines
//   are skipped;
// - .parquet: one document per row, the string column `field` (FineWeb's
//   and Hugging Face datasets' Parquet files); a null is an empty document.
// A name ending in .gz or .zst (x.jsonl.gz, x.txt.zst) is gzip or
// Zstandard, read as the name without the suffix says: decompressed as it
// is read, never copied to disk.
// Files are sorted by path and documents keep their order within a file, so
// the same inputs always give the same shards. Only the positions are
// listed: texts are read when needed, so memory does not grow with the
// corpus.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "muonlab/data/decompressed_stream.h"
#include "muonlab/data/parquet_string_column.h"

namespace muonlab::data {

struct TextInputOptions {
  std::string separator;       // empty: a .txt file is one document
  std::string field = "text";  // the document's field in JSON Lines, its column in Parquet
};

// How a file's documents are read: a text file (whole, or cut by the
// separator), a JSON Lines file, or a Parquet file's column.
enum class TextFileFormat : uint8_t { kText, kJsonLines, kParquet };

struct TextDocument {
  uint32_t file = 0;    // index in TextCorpus::files
  // Where its bytes start in the file, decompressed (JSON Lines: its line);
  // Parquet: its row.
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

struct TextCorpus {
  std::vector<std::string> files;  // as given: the names errors use
  std::vector<TextFileFormat> formats;
  std::vector<TextDocument> documents;
  TextInputOptions options;

  uint64_t total_bytes() const;
};

// Fails naming the input that does not exist, or if no document is found.
// on_file(listed, files) is called after each file.
TextCorpus list_text_documents(const std::vector<std::string>& inputs, const TextInputOptions& options = {},
                               const std::function<void(size_t listed, size_t files)>& on_file = {});

// Reads documents of one corpus, keeping the file of the last one open (a
// corpus's documents are read in order, many from each file; a compressed
// file is decompressed forward, a Parquet file's column read forward a page
// at a time).
class TextDocumentReader {
 public:
  explicit TextDocumentReader(const TextCorpus& corpus) : corpus_(corpus) {}

  // The document's text: its bytes, trimmed where a separator cut them
  // out, or its JSON line's field. A JSON line that is not an object with
  // that string field fails naming the file, the line and what it holds.
  std::string read(const TextDocument& document);
  // "path" for a whole file, "path:LINE" for a JSON line, "path at byte N"
  // for a piece of a separated file, "path, row N" for a Parquet row.
  std::string where(const TextDocument& document);

 private:
  std::string read_bytes(const TextDocument& document);
  std::string read_decompressed(const TextDocument& document);
  std::string read_parquet_row(const TextDocument& document);
  uint64_t line_number(const TextDocument& document);
  std::string text_of_json_line(const TextDocument& document, const std::string& line);

  const TextCorpus& corpus_;
  std::ifstream file_;
  uint32_t open_file_ = UINT32_MAX;
  std::unique_ptr<DecompressedStream> compressed_;
  uint32_t compressed_file_ = UINT32_MAX;
  std::unique_ptr<ParquetStringColumnReader> parquet_;
  uint32_t parquet_file_ = UINT32_MAX;
};

}  // namespace muonlab::data
