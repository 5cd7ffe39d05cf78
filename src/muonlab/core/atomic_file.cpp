#include "muonlab/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "muonlab/core/errors.h"

namespace muonlab {

namespace {

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) fail("cannot open '{}' to sync it: {}", path, std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail("cannot sync '{}': {}", path, std::strerror(err));
}

std::string temporary_path_for(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }

// Makes a finished temporary file the target: its data on disk, then the
// rename, then the folder's entry.
void publish(const std::string& tmp, const std::string& path) {
  fsync_path(tmp, O_RDONLY);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    fail("cannot rename '{}' to '{}': {}", tmp, path, std::strerror(errno));
  }
  auto dir = std::filesystem::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string(), O_RDONLY | O_DIRECTORY);
}

}  // namespace

void sync_directory(const std::string& path) { fsync_path(path, O_RDONLY | O_DIRECTORY); }

void write_file_atomically(const std::string& path,
                           const std::function<void(const std::string& tmp_path)>& write_to) {
  const std::string tmp = temporary_path_for(path);
  try {
    write_to(tmp);
    publish(tmp, path);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

void write_bytes_atomically(const std::string& path, const std::function<void(const AppendBytes& append)>& write_to) {
  write_file_atomically(path, [&](const std::string& tmp) {
    FILE* out = std::fopen(tmp.c_str(), "wb");
    if (out == nullptr) fail("cannot create '{}': {}", path, std::strerror(errno));
    int write_error = 0;
    try {
      write_to([&](const void* data, size_t size) {
        if (write_error == 0 && std::fwrite(data, 1, size, out) != size) write_error = errno != 0 ? errno : EIO;
      });
    } catch (...) {
      std::fclose(out);
      throw;
    }
    if (std::fclose(out) != 0 && write_error == 0) write_error = errno != 0 ? errno : EIO;
    if (write_error != 0) fail("cannot write '{}': {}", path, std::strerror(write_error));
  });
}

AtomicFileWriter::AtomicFileWriter(std::string path)
    : path_(std::move(path)), tmp_path_(temporary_path_for(path_)) {
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (file_ == nullptr) fail("cannot create '{}': {}", path_, std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (file_ == nullptr) return;  // committed
  std::fclose(file_);
  std::remove(tmp_path_.c_str());
}

void AtomicFileWriter::fail_writing(int error) const {
  fail("cannot write '{}': {}", path_, std::strerror(error != 0 ? error : EIO));
}

void AtomicFileWriter::append(const void* data, size_t size) {
  if (std::fwrite(data, 1, size, file_) != size) fail_writing(errno);
}

void AtomicFileWriter::overwrite(uint64_t offset, const void* data, size_t size) {
  if (::fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0) fail_writing(errno);
  append(data, size);
  if (::fseeko(file_, 0, SEEK_END) != 0) fail_writing(errno);
}

void AtomicFileWriter::commit() {
  const bool closed = std::fclose(file_) == 0;
  const int error = errno;
  file_ = nullptr;
  try {
    if (!closed) fail_writing(error);
    publish(tmp_path_, path_);
  } catch (...) {
    std::remove(tmp_path_.c_str());
    throw;
  }
}

void write_text_file_atomically(const std::string& path, const std::string& text) {
  write_bytes_atomically(path, [&](const AppendBytes& append) { append(text.data(), text.size()); });
}

}  // namespace muonlab
