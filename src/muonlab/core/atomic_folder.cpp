#include "muonlab/core/atomic_folder.h"

#include <sys/stat.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/remove_tree.h"

namespace muonlab {
namespace {
namespace fs = std::filesystem;

// A new, empty, uniquely named folder beside `target`: `<target>.<tag>.XXXXXX`.
// Unique, so concurrent writers and leftovers of a killed one never collide.
fs::path make_sibling_folder(const fs::path& target, const char* tag) {
  std::string pattern = target.string() + "." + tag + ".XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    fail("cannot create a folder beside '{}': {}", target.string(), std::strerror(errno));
  }
  // mkdtemp makes it 0700; the folder it becomes is an ordinary output,
  // readable as the umask allows (0755 under the usual 022).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(pattern.c_str(), 0777 & ~mask);
  return pattern;
}

void rename_or_fail(const fs::path& from, const fs::path& to) {
  std::error_code error;
  fs::rename(from, to, error);
  if (error) fail("cannot rename '{}' to '{}': {}", from.string(), to.string(), error.message());
}

// "out/" names the folder "out": rename and mkdtemp need the name itself.
fs::path without_trailing_slash(const std::string& path) {
  fs::path target = fs::path(path).lexically_normal();
  return target.has_filename() ? target : target.parent_path();
}

}  // namespace

bool is_empty_folder(const std::string& path) {
  std::error_code error;
  return fs::is_directory(path, error) && fs::is_empty(path, error) && !error;
}

void write_folder_atomically(const std::string& path, const std::function<void(const std::string& tmp_dir)>& fill,
                             bool replace_existing) {
  const fs::path target = without_trailing_slash(path);
  std::error_code error;
  const bool exists = fs::exists(fs::symlink_status(target, error));
  if (exists && !fs::is_directory(target, error)) fail("'{}' exists and is not a folder", path);
  const bool occupied = exists && !is_empty_folder(target.string());
  if (occupied && !replace_existing) fail("'{}' exists and is not empty", path);

  const fs::path tmp = make_sibling_folder(target, "tmp");
  try {
    fill(tmp.string());
    sync_directory(tmp.string());
  } catch (...) {
    remove_tree(tmp.string(), error);
    throw;
  }
  // The old folder steps aside rather than being deleted first, so a failed
  // rename can put it back; rename(2) replaces an empty folder by itself.
  fs::path displaced;
  bool moved_aside = false;
  try {
    if (occupied) {
      displaced = make_sibling_folder(target, "old");
      rename_or_fail(target, displaced);
      moved_aside = true;
    }
    rename_or_fail(tmp, target);
  } catch (...) {
    if (moved_aside) {
      fs::rename(displaced, target, error);
    } else if (!displaced.empty()) {
      fs::remove(displaced, error);
    }
    remove_tree(tmp.string(), error);
    throw;
  }
  const fs::path parent = target.parent_path();
  sync_directory(parent.empty() ? "." : parent.string());
  if (!displaced.empty()) remove_tree(displaced.string(), error);
}

}  // namespace muonlab
