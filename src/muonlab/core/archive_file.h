// torch::serialize archives on disk: written atomically, and read with
// errors that name the file.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

namespace muonlab {

void save_archive_atomically(torch::serialize::OutputArchive& archive,
                             const std::string& path);

// Opens `path` and hands the archive to `read`; any muonlab::Error or
// c10::Error is rethrown as muonlab::Error prefixed with the path.
void read_archive_file(const std::string& path,
                       const std::function<void(torch::serialize::InputArchive&)>& read);

// The state of anything with save(OutputArchive&) and load(InputArchive&)
// (an optimizer), in a file written atomically and read with errors naming it.
template <typename State>
void save_state_file(const State& state, const std::string& path) {
  torch::serialize::OutputArchive archive;
  state.save(archive);
  save_archive_atomically(archive, path);
}

template <typename State>
void load_state_file(State& state, const std::string& path) {
  read_archive_file(path, [&](torch::serialize::InputArchive& archive) { state.load(archive); });
}

// A string or integer field of an archive; a missing field or one of another
// type fails with "<what> lacks the field '<key>'".
std::string read_archive_string(torch::serialize::InputArchive& archive, const std::string& key,
                                const std::string& what);
int64_t read_archive_int(torch::serialize::InputArchive& archive, const std::string& key,
                         const std::string& what);

}  // namespace muonlab
