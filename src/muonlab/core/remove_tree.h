// Deletes a file or a folder with everything in it, like
// std::filesystem::remove_all, which muonlab does not call: PyTorch 2.x's
// libtorch.so exports its own copy of that symbol, and binaries linked
// against it jump through a null pointer there (seen with torch 2.11 and
// GCC 13: SIGSEGV inside libtorch.so's std::filesystem::remove_all).
#pragma once

#include <string>
#include <system_error>

namespace muonlab {

// Throws muonlab::Error naming the path that could not be removed. A path
// that does not exist is not an error.
void remove_tree(const std::string& path);

// As above, reporting the first failure in `error` instead of throwing.
void remove_tree(const std::string& path, std::error_code& error) noexcept;

}  // namespace muonlab
