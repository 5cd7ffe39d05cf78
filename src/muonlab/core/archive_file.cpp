#include "muonlab/core/archive_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"

namespace muonlab {

void save_archive_atomically(torch::serialize::OutputArchive& archive,
                             const std::string& path) {
  write_file_atomically(path, [&](const std::string& tmp) {
    FILE* out = std::fopen(tmp.c_str(), "wb");
    if (out == nullptr) fail("cannot create '{}': {}", tmp, std::strerror(errno));
    // PyTorch's zip writer throws from its destructor when a write fails
    // (std::terminate, whatever catches it): so the writer never reports a
    // failure to it, only remembers the first, and the file is failed here.
    int write_error = 0;
    archive.save_to([&](const void* data, size_t size) -> size_t {
      if (write_error == 0 && std::fwrite(data, 1, size, out) != size) write_error = errno != 0 ? errno : EIO;
      return size;
    });
    if (std::fclose(out) != 0 && write_error == 0) write_error = errno != 0 ? errno : EIO;
    if (write_error != 0) fail("cannot write '{}': {}", path, std::strerror(write_error));
  });
}

void read_archive_file(const std::string& path,
                       const std::function<void(torch::serialize::InputArchive&)>& read) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
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
