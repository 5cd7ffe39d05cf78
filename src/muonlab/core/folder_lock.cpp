#include "muonlab/core/folder_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "muonlab/core/errors.h"

namespace muonlab {

namespace {

std::string holder_pid(int fd) {
  char buffer[32] = {};
  const ssize_t got = pread(fd, buffer, sizeof(buffer) - 1, 0);
  std::string pid = got > 0 ? std::string(buffer, static_cast<size_t>(got)) : std::string();
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

// "MAJOR:MINOR:INODE" as /proc/locks writes a file's device (in hex) and inode.
std::string proc_locks_file_id(const struct stat& info) {
  return fmt::format("{:02x}:{:02x}:{}", major(info.st_dev), minor(info.st_dev), info.st_ino);
}

}  // namespace

std::optional<long> folder_lock_holder(const std::string& folder) {
  struct stat info {};
  const std::string path = (std::filesystem::path(folder) / ".muonlab.lock").string();
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  const std::string file_id = proc_locks_file_id(info);
  // Lines such as "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; a
  // waiter's line starts "1: -> FLOCK" and holds nothing yet.
  std::ifstream locks("/proc/locks");
  for (std::string line; std::getline(locks, line);) {
    std::istringstream fields(line);
    std::string number, kind, mode, access, id;
    long pid = 0;
    if (!(fields >> number >> kind >> mode >> access >> pid >> id) || kind != "FLOCK") continue;
    if (id == file_id) return pid;
  }
  return std::nullopt;
}

FolderLock::FolderLock(const std::string& folder)
    : path_((std::filesystem::path(folder) / ".muonlab.lock").string()) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create the lock file '{}': {}", path_, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    const std::string pid = holder_pid(fd_);
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK) {
      fail("run folder '{}' is in use by another muonlab process (pid {}); wait for it, stop it, or give another "
           "run.out_dir",
           folder, pid);
    }
    fail("cannot lock '{}': {}", path_, std::strerror(error));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int error = errno;
    ::close(fd_);
    fd_ = -1;
    fail("cannot write the lock file '{}': {}", path_, std::strerror(error));
  }
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays, holding a stale pid no one reads unlocked
}

}  // namespace muonlab
