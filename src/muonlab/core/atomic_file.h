// Writes a file so that readers see either the old content or the complete
// new one, never a half-written file: write to a temporary file beside the
// target, fsync it, rename it over the target, fsync the directory.
#pragma once

#include <cstddef>
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

// fsync of a folder, so that renames and new entries in it survive a crash.
void sync_directory(const std::string& path);

}  // namespace muonlab
