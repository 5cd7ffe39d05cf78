// folder_lock_holder names the process holding a folder's lock, read from
// /proc/locks, and nothing once the lock is released or where no run ever
// locked the folder; asking does not take the lock.
#include "muonlab/core/folder_lock.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

#include "data/data_test_util.h"
#include "test_util.h"

namespace muonlab {
namespace {

TEST(FolderLockHolder, NamesTheHolderWhileItHoldsTheLock) {
  testing::ScratchDir dir;
  std::filesystem::create_directories(dir.file("run"));
  EXPECT_EQ(folder_lock_holder(dir.file("run")), std::nullopt);  // no lock file
  EXPECT_EQ(folder_lock_holder(dir.file("no-such-run")), std::nullopt);
  {
    FolderLock lock(dir.file("run"));
    EXPECT_EQ(folder_lock_holder(dir.file("run")), std::optional<long>(::getpid()));
    // Asking left the lock alone: it is still held, so a second one fails.
    EXPECT_CONTAINS(testing::error_message([&] { FolderLock again(dir.file("run")); }), "is in use by another");
    // Another folder's lock is another file.
    std::filesystem::create_directories(dir.file("other"));
    FolderLock other(dir.file("other"));
    EXPECT_EQ(folder_lock_holder(dir.file("other")), std::optional<long>(::getpid()));
  }
  // Released: the lock file stays, with the last pid in it, but no one holds it.
  EXPECT_TRUE(std::filesystem::exists(dir.file("run/.muonlab.lock")));
  EXPECT_EQ(folder_lock_holder(dir.file("run")), std::nullopt);
}

}  // namespace
}  // namespace muonlab
