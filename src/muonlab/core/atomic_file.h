// Writes a file so that readers see either the old content or the complete
// new one, never a half-written file: write to a temporary file beside the
// target, fsync it, rename it over the target, fsync the directory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace muonlab {

// `write_to(tmp_path)` writes the content to the path it is given. On any
// exception the temporary file is removed and the target is left untouched.
void write_file_atomically(const std::string& path,
                           const std::function<void(const std::string& tmp_path)>& write_to);

// Appends `size` bytes to the file being written.
using AppendBytes = std::function<void(const void* data, size_t size)>;

// The content `write_to` appends, written as above. A failed write (a full
// disk) does not throw inside `write_to`: the first failure is remembered
// and, once `write_to` returns, fails naming `path` and the system's reason.
void write_bytes_atomically(const std::string& path, const std::function<void(const AppendBytes& append)>& write_to);

// `text` as the whole content of `path`, written as above.
void write_text_file_atomically(const std::string& path, const std::string& text);

// A file written a piece at a time, for content too large to gather in
// memory first, and published as above by commit(). Destroyed before
// commit() (an exception on the way), it removes its temporary file and
// leaves the target untouched. Every call fails naming the target and the
// system's reason.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void append(const void* data, size_t size);
  // Rewrites bytes already appended, such as a header whose counts are known
  // only at the end; later appends still go to the end.
  void overwrite(uint64_t offset, const void* data, size_t size);
  void commit();

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail_writing(int error) const;

  std::string path_;
  std::string tmp_path_;
  std::FILE* file_ = nullptr;
};

// fsync of a folder, so that renames and new entries in it survive a crash.
void sync_directory(const std::string& path);

}  // namespace muonlab
