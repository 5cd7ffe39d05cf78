#include "muonlab/data/text_documents.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <nlohmann/json.hpp>

#include "muonlab/core/errors.h"
#include "muonlab/data/decompressed_stream.h"
#include "muonlab/data/parquet_string_column.h"

namespace muonlab::data {
namespace fs = std::filesystem;

namespace {

bool is_compressed_name(const fs::path& path) { return is_compressed_file_name(path.string()); }

// The name that says how to read a file: a compressed file's without its
// compression's suffix.
fs::path content_name(const fs::path& path) { return is_compressed_name(path) ? path.stem() : path; }

TextFileFormat format_of(const fs::path& path) {
  const auto extension = content_name(path).extension();
  if (extension == ".jsonl" || extension == ".json") return TextFileFormat::kJsonLines;
  if (extension == ".parquet") return TextFileFormat::kParquet;
  return TextFileFormat::kText;
}

// The kinds of file a folder gives (any other name is passed over there,
// but read as text when named as an input).
bool is_document_file_name(const fs::path& path) {
  const auto extension = content_name(path).extension();
  return extension == ".txt" || extension == ".jsonl" || extension == ".parquet";
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

std::string_view trimmed(std::string_view text) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

// A whole file mapped read-only while its documents are found, so that the
// listing reads a file of any size once and holds none of it.
class ScannedFile {
 public:
  explicit ScannedFile(const std::string& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot open '{}': {}", path, std::strerror(errno));
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      ::close(fd);
      fail("cannot stat '{}': {}", path, std::strerror(errno));
    }
    bytes_ = static_cast<size_t>(info.st_size);
    if (bytes_ > 0) {
      mapping_ = ::mmap(nullptr, bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (mapping_ == MAP_FAILED) {
        ::close(fd);
        fail("cannot map '{}': {}", path, std::strerror(errno));
      }
      ::madvise(mapping_, bytes_, MADV_SEQUENTIAL);
    }
    ::close(fd);
  }
  ~ScannedFile() {
    if (bytes_ > 0) ::munmap(mapping_, bytes_);
  }
  ScannedFile(const ScannedFile&) = delete;
  ScannedFile& operator=(const ScannedFile&) = delete;

  std::string_view text() const { return {static_cast<const char*>(mapping_), bytes_}; }

 private:
  std::string path_;
  void* mapping_ = nullptr;
  size_t bytes_ = 0;
};

// Each non-blank line of a JSON Lines file (a final line without a newline
// included; a trailing '\r' left out).
void list_json_lines(uint32_t file, std::string_view text, std::vector<TextDocument>& documents) {
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!is_blank(line)) documents.push_back({file, start, line.size()});
    start = end + 1;
  }
}

// The pieces of a text file between separators; blank ones are left out
// (a separator at the start or end, or two in a row).
void list_separated(uint32_t file, std::string_view text, const std::string& separator,
                    std::vector<TextDocument>& documents) {
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) end = text.size();
    if (!is_blank(text.substr(start, end - start))) documents.push_back({file, start, end - start});
    start = end + separator.size();
  }
}

// The documents of a stream cut at `delimiter` ("\n" for JSON Lines, the
// separator for text), found as the stream is read, as list_json_lines and
// list_separated find them in a mapped file: only each document's start and
// whether it holds more than whitespace are kept, so memory stays at one
// read however long a document is.
class DelimitedListing {
 public:
  DelimitedListing(uint32_t file, std::string delimiter, bool json_lines, std::vector<TextDocument>& documents)
      : file_(file), delimiter_(std::move(delimiter)), json_lines_(json_lines), documents_(documents) {}

  // The next bytes of the stream; `at_end` after its last.
  void add(std::string_view bytes, bool at_end) {
    pending_.append(bytes);
    size_t at = 0;
    for (size_t found; (found = pending_.find(delimiter_, at)) != std::string::npos;) {
      scan(std::string_view(pending_).substr(at, found - at));
      end_document(base_ + found);
      at = found + delimiter_.size();
      start_ = base_ + at;
    }
    // A delimiter may begin in the last bytes and end in the next read.
    const size_t kept = at_end ? 0 : std::min(delimiter_.size() - 1, pending_.size() - at);
    scan(std::string_view(pending_).substr(at, pending_.size() - kept - at));
    if (at_end) end_document(base_ + pending_.size());
    base_ += pending_.size() - kept;
    pending_.erase(0, pending_.size() - kept);
  }

 private:
  void scan(std::string_view text) {
    if (text.empty()) return;
    if (!has_text_) has_text_ = !is_blank(text);
    last_ = text.back();
  }

  void end_document(uint64_t end) {
    const uint64_t bytes = end - start_ - (json_lines_ && end > start_ && last_ == '\r' ? 1 : 0);
    if (has_text_) documents_.push_back({file_, start_, bytes});
    has_text_ = false;
    last_ = 0;
  }

  const uint32_t file_;
  const std::string delimiter_;
  const bool json_lines_;
  std::vector<TextDocument>& documents_;
  std::string pending_;    // bytes from base_ not yet scanned
  uint64_t base_ = 0;
  uint64_t start_ = 0;     // of the current document
  bool has_text_ = false;  // more than whitespace in it so far
  char last_ = 0;          // its last byte so far
};

// A compressed file's documents, listed as it is decompressed.
void list_compressed(uint32_t index, const TextCorpus& corpus, std::vector<TextDocument>& documents) {
  DecompressedStream stream(corpus.files[index]);
  const bool json_lines = corpus.formats[index] == TextFileFormat::kJsonLines;
  const std::string& separator = corpus.options.separator;
  std::vector<char> piece(1 << 20);
  if (!json_lines && separator.empty()) {  // one document: only its size is needed
    while (stream.read(piece.data(), piece.size()) > 0) {
    }
    documents.push_back({index, 0, stream.position()});
    return;
  }
  DelimitedListing listing(index, json_lines ? "\n" : separator, json_lines, documents);
  for (bool at_end = false; !at_end;) {
    const size_t got = stream.read(piece.data(), piece.size());
    at_end = got == 0;
    listing.add({piece.data(), got}, at_end);
  }
}

// The documents' column of a Parquet file; a file without it is named with
// the option that picks another.
ParquetStringColumnReader open_documents_column(const std::string& path, const std::string& field) {
  try {
    return ParquetStringColumnReader(path, field);
  } catch (const ParquetMissingColumn& error) {
    fail("{}; name the documents' column with --field", error.what());
  }
}

// A Parquet file's rows, each a document whose offset is its row (a null
// row is an empty document).
void list_parquet_rows(uint32_t file, const TextCorpus& corpus, std::vector<TextDocument>& documents) {
  ParquetStringColumnReader rows = open_documents_column(corpus.files[file], corpus.options.field);
  while (rows.next()) {
    const std::string_view* text = rows.value();
    documents.push_back({file, static_cast<uint64_t>(rows.row()), text ? text->size() : 0});
  }
}

void list_file(uint32_t index, const TextCorpus& corpus, std::vector<TextDocument>& documents) {
  const std::string& path = corpus.files[index];
  if (corpus.formats[index] == TextFileFormat::kParquet) {
    list_parquet_rows(index, corpus, documents);
    return;
  }
  if (is_compressed_name(path)) {
    list_compressed(index, corpus, documents);
    return;
  }
  const bool json_lines = corpus.formats[index] == TextFileFormat::kJsonLines;
  if (!json_lines && corpus.options.separator.empty()) {
    documents.push_back({index, 0, static_cast<uint64_t>(fs::file_size(path))});
    return;
  }
  const ScannedFile scanned(path);
  if (json_lines) {
    list_json_lines(index, scanned.text(), documents);
  } else {
    list_separated(index, scanned.text(), corpus.options.separator, documents);
  }
}

std::vector<fs::path> input_files(const std::vector<std::string>& inputs) {
  std::vector<fs::path> files;
  for (const auto& input : inputs) {
    if (fs::is_directory(input)) {
      for (const auto& entry : fs::recursive_directory_iterator(input)) {
        if (entry.is_regular_file() && is_document_file_name(entry.path())) files.push_back(entry.path());
      }
    } else if (fs::is_regular_file(input)) {
      files.emplace_back(input);
    } else {
      fail("input '{}' is neither a text file nor a folder", input);
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

}  // namespace

uint64_t TextCorpus::total_bytes() const {
  uint64_t bytes = 0;
  for (const auto& document : documents) bytes += document.bytes;
  return bytes;
}

TextCorpus list_text_documents(const std::vector<std::string>& inputs, const TextInputOptions& options,
                               const std::function<void(size_t listed, size_t files)>& on_file) {
  if (options.field.empty()) fail("the documents' field is empty: expected a name such as \"text\"");
  TextCorpus corpus;
  corpus.options = options;
  const std::vector<fs::path> files = input_files(inputs);
  if (files.empty()) fail("no documents found: the inputs hold no .txt, .jsonl or .parquet files");
  for (const auto& path : files) {
    const TextFileFormat format = format_of(path);
    if (format == TextFileFormat::kParquet && is_compressed_name(path)) {
      fail("'{}' is a compressed Parquet file: decompress it first (Parquet compresses its pages itself)",
           path.string());
    }
    const auto index = static_cast<uint32_t>(corpus.files.size());
    corpus.files.push_back(path.string());
    corpus.formats.push_back(format);
    list_file(index, corpus, corpus.documents);
    if (on_file) on_file(corpus.files.size(), files.size());
  }
  if (corpus.documents.empty()) {
    fail("no documents found: the {} input file(s) hold only blank lines or separators", corpus.files.size());
  }
  return corpus;
}

std::string TextDocumentReader::read_bytes(const TextDocument& document) {
  const std::string& path = corpus_.files[document.file];
  if (is_compressed_file_name(path)) return read_decompressed(document);
  if (open_file_ != document.file) {
    file_ = std::ifstream(path, std::ios::binary);
    open_file_ = file_ ? document.file : UINT32_MAX;
    if (!file_) fail("cannot open '{}': {}", path, std::strerror(errno));
  }
  std::string bytes(document.bytes, '\0');
  file_.seekg(static_cast<std::streamoff>(document.offset));
  file_.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (file_.gcount() != static_cast<std::streamsize>(bytes.size())) {
    open_file_ = UINT32_MAX;
    fail("cannot read {} bytes at byte {} of '{}': the file changed while it was read", document.bytes,
         document.offset, path);
  }
  return bytes;
}

// Documents are read in order, so the stream is decompressed forward; an
// earlier document starts it again.
std::string TextDocumentReader::read_decompressed(const TextDocument& document) {
  if (!compressed_ || compressed_file_ != document.file) {
    compressed_ = std::make_unique<DecompressedStream>(corpus_.files[document.file]);
    compressed_file_ = document.file;
  }
  compressed_->seek(document.offset);
  std::string bytes(document.bytes, '\0');
  for (size_t done = 0; done < bytes.size();) {
    const size_t got = compressed_->read(bytes.data() + done, bytes.size() - done);
    if (got == 0) {
      fail("'{}' ends at decompressed byte {}, inside a document listed with {} bytes from byte {}: the file "
           "changed while it was read", corpus_.files[document.file], compressed_->position(), document.bytes,
           document.offset);
    }
    done += got;
  }
  return bytes;
}

std::string TextDocumentReader::read_parquet_row(const TextDocument& document) {
  // Documents are read in order, so the column is read forward; an earlier
  // row starts it again.
  if (!parquet_ || parquet_file_ != document.file || parquet_->row() >= static_cast<int64_t>(document.offset)) {
    parquet_ = std::make_unique<ParquetStringColumnReader>(
        open_documents_column(corpus_.files[document.file], corpus_.options.field));
    parquet_file_ = document.file;
  }
  while (parquet_->row() < static_cast<int64_t>(document.offset)) {
    if (!parquet_->next()) break;
  }
  const std::string_view* text = parquet_->row() == static_cast<int64_t>(document.offset) ? parquet_->value() : nullptr;
  if ((text ? text->size() : 0) != document.bytes) {
    fail("{}: the file changed while it was read ({} bytes there now, {} when listed)", where(document),
         text ? text->size() : 0, document.bytes);
  }
  return text ? std::string(*text) : std::string();
}

// Counted only for a message: the listing keeps no line numbers.
uint64_t TextDocumentReader::line_number(const TextDocument& document) {
  const std::string& path = corpus_.files[document.file];
  std::unique_ptr<DecompressedStream> decompressed;
  std::ifstream plain;
  if (is_compressed_file_name(path)) {
    decompressed = std::make_unique<DecompressedStream>(path);
  } else {
    plain.open(path, std::ios::binary);
  }
  uint64_t line = 1;
  std::vector<char> piece(1 << 16);
  for (uint64_t left = document.offset; left > 0;) {
    const size_t wanted = std::min<uint64_t>(piece.size(), left);
    size_t got = 0;
    if (decompressed) {
      got = decompressed->read(piece.data(), wanted);
    } else {
      plain.read(piece.data(), static_cast<std::streamsize>(wanted));
      got = static_cast<size_t>(plain.gcount());
    }
    if (got == 0) break;
    line += std::count(piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(got), '\n');
    left -= got;
  }
  return line;
}

std::string TextDocumentReader::where(const TextDocument& document) {
  const std::string& path = corpus_.files[document.file];
  if (corpus_.formats[document.file] == TextFileFormat::kParquet) {
    return fmt::format("{}, row {}", path, document.offset);
  }
  if (corpus_.formats[document.file] == TextFileFormat::kJsonLines) {
    return fmt::format("{}:{}", path, line_number(document));
  }
  if (corpus_.options.separator.empty()) return path;
  return fmt::format("{} at byte {}", path, document.offset);
}

std::string TextDocumentReader::text_of_json_line(const TextDocument& document, const std::string& line) {
  const std::string& field = corpus_.options.field;
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& error) {
    fail("{}: not a JSON line ({}); a JSON Lines file holds one object per line, such as {{\"{}\": \"...\"}}",
         where(document), error.what(), field);
  }
  if (!object.is_object()) fail("{}: expected a JSON object, got {}", where(document), object.type_name());
  const auto value = object.find(field);
  if (value == object.end()) {
    std::vector<std::string> keys;
    for (const auto& item : object.items()) keys.push_back(item.key());
    fail("{}: no field \"{}\" (the object has: {}); name the documents' field with --field", where(document),
         field, keys.empty() ? std::string("no fields") : fmt::format("{}", fmt::join(keys, ", ")));
  }
  if (!value->is_string()) {
    fail("{}: field \"{}\" is {}, expected a string", where(document), field, value->type_name());
  }
  return value->get<std::string>();
}

std::string TextDocumentReader::read(const TextDocument& document) {
  if (corpus_.formats[document.file] == TextFileFormat::kParquet) return read_parquet_row(document);
  std::string bytes = read_bytes(document);
  if (corpus_.formats[document.file] == TextFileFormat::kJsonLines) return text_of_json_line(document, bytes);
  if (corpus_.options.separator.empty()) return bytes;
  return std::string(trimmed(bytes));
}

}  // namespace muonlab::data
