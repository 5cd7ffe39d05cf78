#include "muonlab/data/text_documents.h"

#include <fcntl.h>
#include <stdlib.h>
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
#include <zlib.h>
#ifdef MUONLAB_ZSTD
#include <zstd.h>
#endif

#include "muonlab/core/errors.h"
#include "muonlab/data/parquet_string_column.h"

namespace muonlab::data {
namespace fs = std::filesystem;

namespace {

bool is_gzip_name(const fs::path& path) { return path.extension() == ".gz"; }
bool is_zstd_name(const fs::path& path) { return path.extension() == ".zst"; }
bool is_compressed_name(const fs::path& path) { return is_gzip_name(path) || is_zstd_name(path); }

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

bool write_all(int out, const void* data, size_t size) {
  return ::write(out, data, size) == static_cast<ssize_t>(size);
}

// Writes the decompressed bytes of the gzip file `path` (every member of
// it) to `out`; returns "" or what is wrong. Inflated here rather than
// through gzread, which some zlib builds let end quietly at a cut stream or
// read as plain data after a bad header.
std::string inflate_gzip(const std::string& path, int out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fmt::format("cannot open '{}': {}", path, std::strerror(errno));
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 16) != Z_OK) return "zlib could not start inflating";
  std::vector<unsigned char> input(1 << 20), output(1 << 20);
  std::string error;
  bool ended = true;  // at the end of a member (or before the first)
  while (error.empty()) {
    if (stream.avail_in == 0) {
      in.read(reinterpret_cast<char*>(input.data()), static_cast<std::streamsize>(input.size()));
      stream.next_in = input.data();
      stream.avail_in = static_cast<uInt>(in.gcount());
      if (stream.avail_in == 0) break;
    }
    if (ended) {
      inflateReset(&stream);
      ended = false;
    }
    stream.next_out = output.data();
    stream.avail_out = static_cast<uInt>(output.size());
    const int result = inflate(&stream, Z_NO_FLUSH);
    if (result != Z_OK && result != Z_STREAM_END) {
      error = fmt::format("'{}' is not valid gzip: {}", path, stream.msg ? stream.msg : "inflate failed");
      break;
    }
    const size_t produced = output.size() - stream.avail_out;
    if (!write_all(out, output.data(), produced)) {
      error = fmt::format("cannot write the decompressed copy of '{}': {}", path, std::strerror(errno));
    }
    ended = result == Z_STREAM_END;
  }
  inflateEnd(&stream);
  if (error.empty() && !ended) error = fmt::format("'{}' is not valid gzip: the stream is cut short", path);
  return error;
}

// Writes the decompressed bytes of the Zstandard file `path` (every frame of
// it) to `out`; returns "" or what is wrong.
std::string decompress_zstd(const std::string& path, int out) {
#ifdef MUONLAB_ZSTD
  std::ifstream in(path, std::ios::binary);
  if (!in) return fmt::format("cannot open '{}': {}", path, std::strerror(errno));
  const std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> context(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::vector<char> input(ZSTD_DStreamInSize()), output(ZSTD_DStreamOutSize());
  size_t pending = 0;  // 0 at the end of a frame
  bool read_any = false;
  while (in) {
    in.read(input.data(), static_cast<std::streamsize>(input.size()));
    ZSTD_inBuffer chunk{input.data(), static_cast<size_t>(in.gcount()), 0};
    read_any |= chunk.size > 0;
    while (chunk.pos < chunk.size) {
      ZSTD_outBuffer produced{output.data(), output.size(), 0};
      pending = ZSTD_decompressStream(context.get(), &produced, &chunk);
      if (ZSTD_isError(pending)) {
        return fmt::format("'{}' is not valid Zstandard: {}", path, ZSTD_getErrorName(pending));
      }
      if (!write_all(out, output.data(), produced.pos)) {
        return fmt::format("cannot write the decompressed copy of '{}': {}", path, std::strerror(errno));
      }
    }
  }
  if (!read_any) return fmt::format("'{}' is not valid Zstandard: the file is empty", path);
  if (pending != 0) return fmt::format("'{}' is not valid Zstandard: the stream is cut short", path);
  return "";
#else
  (void)out;
  return fmt::format("'{}' is Zstandard, which this build of muonlab does not read: install libzstd-dev and "
                     "rebuild, or decompress it (zstd -d)", path);
#endif
}

// Decompresses a gzip or Zstandard file to a fresh file in the temporary
// folder and returns its path; fails naming the file when it is not valid
// or is cut, leaving no copy behind.
std::string decompressed_copy(const std::string& path) {
  std::string copy = (fs::temp_directory_path() / "muonlab-prepare-XXXXXX").string();
  const int fd = ::mkstemp(copy.data());
  if (fd < 0) fail("cannot create a temporary file to decompress '{}': {}", path, std::strerror(errno));
  const std::string error = is_gzip_name(path) ? inflate_gzip(path, fd) : decompress_zstd(path, fd);
  ::close(fd);
  if (!error.empty()) {
    fs::remove(copy);
    fail("{}", error);
  }
  return copy;
}

struct RemovedFiles {
  std::vector<std::string> paths;
  ~RemovedFiles() {
    std::error_code ignored;
    for (const auto& path : paths) fs::remove(path, ignored);
  }
};

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

// A Parquet file's rows, each a document whose offset is its row (a null
// row is an empty document).
void list_parquet_rows(uint32_t file, const TextCorpus& corpus, std::vector<TextDocument>& documents) {
  ParquetStringColumnReader rows(corpus.read_from[file], corpus.options.field);
  while (rows.next()) {
    const std::string_view* text = rows.value();
    documents.push_back({file, static_cast<uint64_t>(rows.row()), text ? text->size() : 0});
  }
}

void list_file(uint32_t index, const TextCorpus& corpus, std::vector<TextDocument>& documents) {
  const std::string& path = corpus.read_from[index];
  if (corpus.formats[index] == TextFileFormat::kParquet) {
    list_parquet_rows(index, corpus, documents);
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

TextCorpus list_text_documents(const std::vector<std::string>& inputs, const TextInputOptions& options) {
  if (options.field.empty()) fail("the documents' field is empty: expected a name such as \"text\"");
  TextCorpus corpus;
  corpus.options = options;
  const std::vector<fs::path> files = input_files(inputs);
  if (files.empty()) fail("no documents found: the inputs hold no .txt, .jsonl or .parquet files");
  auto temporary = std::make_shared<RemovedFiles>();
  corpus.temporary_files = std::shared_ptr<const std::vector<std::string>>(temporary, &temporary->paths);
  for (const auto& path : files) {
    const auto index = static_cast<uint32_t>(corpus.files.size());
    corpus.files.push_back(path.string());
    corpus.formats.push_back(format_of(path));
    std::string read_from = path.string();
    if (is_compressed_name(path)) {
      read_from = decompressed_copy(path.string());
      temporary->paths.push_back(read_from);
    }
    corpus.read_from.push_back(read_from);
    list_file(index, corpus, corpus.documents);
  }
  if (corpus.documents.empty()) {
    fail("no documents found: the {} input file(s) hold only blank lines or separators", corpus.files.size());
  }
  return corpus;
}

std::string TextDocumentReader::read_bytes(const TextDocument& document) {
  const std::string& path = corpus_.read_from[document.file];
  // Messages name the input; a compressed or Parquet input is read from a
  // temporary copy, named too.
  const auto file_name = [&] {
    const std::string& input = corpus_.files[document.file];
    return input == path ? fmt::format("'{}'", path) : fmt::format("'{}' (read from its copy '{}')", input, path);
  };
  if (open_file_ != document.file) {
    file_ = std::ifstream(path, std::ios::binary);
    open_file_ = file_ ? document.file : UINT32_MAX;
    if (!file_) fail("cannot open {}: {}", file_name(), std::strerror(errno));
  }
  std::string bytes(document.bytes, '\0');
  file_.seekg(static_cast<std::streamoff>(document.offset));
  file_.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (file_.gcount() != static_cast<std::streamsize>(bytes.size())) {
    open_file_ = UINT32_MAX;
    fail("cannot read {} bytes at byte {} of {}: the file changed while it was read", document.bytes,
         document.offset, file_name());
  }
  return bytes;
}

std::string TextDocumentReader::read_parquet_row(const TextDocument& document) {
  // Documents are read in order, so the column is read forward; an earlier
  // row starts it again.
  if (!parquet_ || parquet_file_ != document.file || parquet_->row() >= static_cast<int64_t>(document.offset)) {
    parquet_ = std::make_unique<ParquetStringColumnReader>(corpus_.read_from[document.file], corpus_.options.field);
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

std::string TextDocumentReader::where(const TextDocument& document) {
  const std::string& path = corpus_.files[document.file];
  if (corpus_.formats[document.file] == TextFileFormat::kParquet) {
    return fmt::format("{}, row {}", path, document.offset);
  }
  if (corpus_.formats[document.file] == TextFileFormat::kJsonLines) {
    // Counted only here, for a message: the listing keeps no line numbers.
    std::ifstream file(corpus_.read_from[document.file], std::ios::binary);
    uint64_t line = 1;
    for (uint64_t i = 0; i < document.offset && file; ++i) line += file.get() == '\n';
    return fmt::format("{}:{}", path, line);
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
