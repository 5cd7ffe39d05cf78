#include "muonlab/core/remove_tree.h"

#include <ftw.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "muonlab/core/errors.h"

namespace muonlab {

namespace {

// nftw keeps no user pointer, so the first failure goes through a
// thread-local slot.
thread_local int first_errno = 0;

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  if (std::remove(path) != 0 && first_errno == 0) first_errno = errno;
  return 0;  // go on: remove as much as possible
}

}  // namespace

void remove_tree(const std::string& path, std::error_code& error) noexcept {
  error.clear();
  first_errno = 0;
  // FTW_DEPTH: a folder after its contents; FTW_PHYS: links are removed, not followed.
  if (::nftw(path.c_str(), remove_entry, 32, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT) first_errno = errno;
  if (first_errno != 0) error = std::error_code(first_errno, std::generic_category());
}

void remove_tree(const std::string& path) {
  std::error_code error;
  remove_tree(path, error);
  if (error) fail("cannot remove '{}': {}", path, error.message());
}

}  // namespace muonlab
