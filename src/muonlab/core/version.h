#pragma once

#include <string>

namespace muonlab {

// muonlab's own version, e.g. "0.1.0".
std::string version();

// One line per fact: muonlab, LibTorch, compute devices, threads.
std::string build_report();

}  // namespace muonlab
