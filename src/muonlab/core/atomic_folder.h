// Writes a folder so that readers see either the old folder or the complete
// new one, never a half-filled one: fill a fresh temporary folder beside the
// target, sync it, then rename it into place and sync the parent.
#pragma once

#include <functional>
#include <string>

namespace muonlab {

// `fill(tmp_dir)` writes every file of the new folder into `tmp_dir` (synced
// files: write_file_atomically or save_safetensors). A target that does not
// exist or is an empty folder is simply replaced; a non-empty one only when
// `replace_existing`, and it is removed only after the new folder is in
// place. On any exception the temporary folder is removed and the target is
// left as it was.
void write_folder_atomically(const std::string& path, const std::function<void(const std::string& tmp_dir)>& fill,
                             bool replace_existing);

// True for a folder holding nothing; false for a missing path or anything else.
bool is_empty_folder(const std::string& path);

}  // namespace muonlab
