#include "muonlab/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

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

}  // namespace

void sync_directory(const std::string& path) { fsync_path(path, O_RDONLY | O_DIRECTORY); }

void write_file_atomically(const std::string& path,
                           const std::function<void(const std::string& tmp_path)>& write_to) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    write_to(tmp);
    fsync_path(tmp, O_RDONLY);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      fail("cannot rename '{}' to '{}': {}", tmp, path, std::strerror(errno));
    }
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  auto dir = std::filesystem::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string(), O_RDONLY | O_DIRECTORY);
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

void write_text_file_atomically(const std::string& path, const std::string& text) {
  write_bytes_atomically(path, [&](const AppendBytes& append) { append(text.data(), text.size()); });
}

}  // namespace muonlab
