// A full disk while writing a checkpoint's files: each writer fails with a
// muonlab::Error naming the file and the system's reason, and leaves neither
// the file nor its temporary behind. PyTorch's zip writer (optimizer.pt)
// used to throw from a destructor here, ending the process. The disk is
// "full" through RLIMIT_FSIZE (EFBIG past 64 KiB) in a forked child, so
// the test needs no special mount.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <functional>
#include <string>

#include "muonlab/core/archive_file.h"
#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/safetensors_file.h"

namespace muonlab {
namespace {

namespace fs = std::filesystem;

constexpr int kFailedAsExpected = 7;

// In the child: limits file size, runs `write` on `path`, and exits
// kFailedAsExpected if it threw muonlab::Error and left no file behind;
// the error goes to stderr for EXPECT_EXIT to match.
[[noreturn]] void write_on_a_full_disk(const fs::path& path, const std::function<void()>& write) {
  ::signal(SIGXFSZ, SIG_IGN);  // else the kernel kills the writer instead of failing write(2)
  const rlimit limit{64 << 10, 64 << 10};
  ::setrlimit(RLIMIT_FSIZE, &limit);
  try {
    write();
  } catch (const Error& error) {
    std::fprintf(stderr, "%s\n", error.what());
    bool left_behind = false;
    for (const auto& entry : fs::directory_iterator(path.parent_path())) left_behind = true, (void)entry;
    std::_Exit(left_behind ? 2 : kFailedAsExpected);
  }
  std::_Exit(1);
}

class DiskFull : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    folder_ = fs::temp_directory_path() / ("muonlab_disk_full_" + std::to_string(::getpid()));
    fs::remove_all(folder_);
    fs::create_directories(folder_);
  }
  void TearDown() override { fs::remove_all(folder_); }
  fs::path folder_;
};

TEST_F(DiskFull, OptimizerArchiveIsNamedNotACrash) {
  const fs::path path = folder_ / "optimizer.pt";
  EXPECT_EXIT(write_on_a_full_disk(path,
                                   [&] {
                                     torch::serialize::OutputArchive archive;
                                     archive.write("state", torch::ones({256, 256}));
                                     save_archive_atomically(archive, path.string());
                                   }),
              ::testing::ExitedWithCode(kFailedAsExpected), "cannot write '.*optimizer.pt': File too large");
}

TEST_F(DiskFull, SafetensorsIsNamed) {
  const fs::path path = folder_ / "model.safetensors";
  EXPECT_EXIT(write_on_a_full_disk(path, [&] { save_safetensors(path.string(), {{"w", torch::ones({256, 256})}}); }),
              ::testing::ExitedWithCode(kFailedAsExpected), "cannot write '.*model.safetensors': File too large");
}

TEST_F(DiskFull, TextFileIsNamed) {
  const fs::path path = folder_ / "state.json";
  EXPECT_EXIT(write_on_a_full_disk(path, [&] { write_text_file_atomically(path.string(), std::string(1 << 20, 'x')); }),
              ::testing::ExitedWithCode(kFailedAsExpected), "cannot write '.*state.json': File too large");
}

// Written in pieces, as data prepare writes its shards: the failure comes
// from an append or from commit() (stdio buffers), named either way.
TEST_F(DiskFull, FileWrittenInPiecesIsNamed) {
  const fs::path path = folder_ / "train_000000.bin";
  EXPECT_EXIT(write_on_a_full_disk(path,
                                   [&] {
                                     AtomicFileWriter file(path.string());
                                     const std::string piece(4096, 'x');
                                     for (int i = 0; i < 256; ++i) file.append(piece.data(), piece.size());
                                     file.commit();
                                   }),
              ::testing::ExitedWithCode(kFailedAsExpected), "cannot write '.*train_000000.bin': File too large");
}

// The header rewritten at the end lands at its place; a writer dropped
// before commit() leaves nothing, not even over an existing file.
TEST(AtomicFileWriter, OverwritesInPlaceAndPublishesOnlyOnCommit) {
  const fs::path folder = fs::temp_directory_path() / ("muonlab_atomic_writer_" + std::to_string(::getpid()));
  fs::remove_all(folder);
  fs::create_directories(folder);
  const std::string path = (folder / "file.bin").string();
  {
    AtomicFileWriter file(path);
    file.append("....body", 8);
    file.overwrite(0, "head", 4);
    file.append("!", 1);
    EXPECT_FALSE(fs::exists(path));
    file.commit();
  }
  auto read = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(read(), "headbody!");
  {
    AtomicFileWriter dropped(path);
    dropped.append("other", 5);
  }
  EXPECT_EQ(read(), "headbody!");
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(folder)) ++files;
  EXPECT_EQ(files, 1u);
  fs::remove_all(folder);
}

}  // namespace
}  // namespace muonlab
