// remove_tree deletes a folder with everything in it, removes links without
// following them, and takes a missing path as already removed.
#include "muonlab/core/remove_tree.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "data/data_test_util.h"

namespace muonlab {
namespace {

namespace fs = std::filesystem;

TEST(RemoveTree, RemovesNestedFoldersAndLinksButNotTheirTargets) {
  testing::ScratchDir dir;
  testing::write_bytes(dir.file("keep/outside.txt"), "stays");
  testing::write_bytes(dir.file("tree/a/b/c.txt"), "x");
  testing::write_bytes(dir.file("tree/d.txt"), "y");
  fs::create_directory_symlink(dir.file("keep"), dir.file("tree/a/link"));
  remove_tree(dir.file("tree"));
  EXPECT_FALSE(fs::exists(dir.file("tree")));
  EXPECT_EQ(testing::read_bytes(dir.file("keep/outside.txt")), "stays");
}

TEST(RemoveTree, MissingPathIsNotAnErrorAndAFileIsRemoved) {
  testing::ScratchDir dir;
  std::error_code error;
  remove_tree(dir.file("never-made"), error);
  EXPECT_FALSE(error) << error.message();
  testing::write_bytes(dir.file("one.txt"), "z");
  remove_tree(dir.file("one.txt"));
  EXPECT_FALSE(fs::exists(dir.file("one.txt")));
}

}  // namespace
}  // namespace muonlab
