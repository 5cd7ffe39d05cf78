// Where muonlab's code was loaded from, so it can find files installed beside
// it (the GPT-2 tokenizer under <prefix>/share/muonlab) without a path
// compiled in: the same binary works from the build tree, an installed
// prefix, a moved prefix, or a Python wheel.
#pragma once

#include <filesystem>
#include <vector>

namespace muonlab {

// The executable or shared library loaded at `address`, as a canonical
// path; empty if unknown.
std::filesystem::path file_holding(const void* address);

// The executable or shared library that holds libmuonlab's code (for the
// static library, the program it is linked into); empty if unknown.
std::filesystem::path code_file();

// The folder of code_file() and each of its ancestors up to the root,
// nearest first; empty if code_file() is unknown.
std::vector<std::filesystem::path> code_folders();

}  // namespace muonlab
