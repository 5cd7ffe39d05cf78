#include "muonlab/core/archive_file.h"

#include <filesystem>
#include <fstream>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"

namespace muonlab {

void save_archive_atomically(torch::serialize::OutputArchive& archive,
                             const std::string& path) {
  // PyTorch's zip writer throws from its destructor when a write fails
  // (std::terminate, whatever catches it): write_bytes_atomically never
  // reports a failure to it, and fails the file once the writer is done.
  write_bytes_atomically(path, [&](const AppendBytes& append) {
    archive.save_to([&](const void* data, size_t size) -> size_t {
      append(data, size);
      return size;
    });
  });
}

namespace {

// PyTorch archives are zip files: a local file header first.
bool starts_as_a_zip_file(const std::string& path) {
  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(magic, sizeof magic);
  return in.gcount() == 4 && std::string(magic, 4) == std::string("PK\x03\x04", 4);
}

}  // namespace

void read_archive_file(const std::string& path,
                       const std::function<void(torch::serialize::InputArchive&)>& read) {
  // LibTorch's own message for a missing file reads "open file failed because
  // of errno 2 on fopen: , file path: ...".
  if (!std::filesystem::exists(path)) fail("cannot read '{}': no such file", path);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    if (!starts_as_a_zip_file(path)) {
      fail("cannot read '{}': not a PyTorch archive (it does not begin as the zip file that muonlab's model files "
           "and checkpoints are)",
           path);
    }
    fail("cannot read '{}': {}", path, e.what_without_backtrace());
  }
  try {
    read(archive);
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  } catch (const c10::Error& e) {
    fail("{}: {}", path, e.what_without_backtrace());
  }
}

std::string read_archive_string(torch::serialize::InputArchive& archive, const std::string& key,
                                const std::string& what) {
  c10::IValue value;
  if (!archive.try_read(key, value) || !value.isString()) {
    fail("{} lacks the field '{}'", what, key);
  }
  return value.toStringRef();
}

int64_t read_archive_int(torch::serialize::InputArchive& archive, const std::string& key,
                         const std::string& what) {
  c10::IValue value;
  if (!archive.try_read(key, value) || !value.isInt()) {
    fail("{} lacks the integer field '{}'", what, key);
  }
  return value.toInt();
}

}  // namespace muonlab
