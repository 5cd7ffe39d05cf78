// An exclusive lock on a folder for the life of this object: the lock file
// FOLDER/.muonlab.lock holds the owner's pid, and flock(2) keeps a second
// process (another `muonlab train` with the same run.out_dir) out. The
// kernel drops the lock when the owner exits, however it exits, so a killed
// run never leaves a folder locked.
#pragma once

#include <optional>
#include <string>

namespace muonlab {

class FolderLock {
 public:
  // Fails naming the folder and the holder's pid when another process holds
  // the lock, or the lock file when it cannot be created.
  explicit FolderLock(const std::string& folder);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// The pid of the process holding FOLDER's lock now, or nullopt when none
// does (or the folder has no lock file). Read from /proc/locks, so asking
// never takes the lock a starting run may be about to take.
std::optional<long> folder_lock_holder(const std::string& folder);

}  // namespace muonlab
