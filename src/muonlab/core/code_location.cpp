#include "muonlab/core/code_location.h"

#include <dlfcn.h>

#include <system_error>

namespace muonlab {
namespace fs = std::filesystem;

fs::path file_holding(const void* address) {
  // dladdr names the loaded object containing an address.
  Dl_info info{};
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return {};
  std::error_code error;
  fs::path file = fs::canonical(info.dli_fname, error);
  return error ? fs::path() : file;
}

fs::path code_file() {
  // This function's own address is inside whichever binary libmuonlab was
  // linked into.
  return file_holding(reinterpret_cast<const void*>(&code_file));
}

std::vector<fs::path> code_folders() {
  std::vector<fs::path> folders;
  fs::path file = code_file();
  if (file.empty()) return folders;
  for (fs::path dir = file.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    folders.push_back(dir);
    if (dir == dir.root_path()) break;
  }
  return folders;
}

}  // namespace muonlab
