// A whole file into memory, failing with the path and the system's reason.
#pragma once

#include <string>

namespace muonlab {

std::string read_whole_file(const std::string& path);

}  // namespace muonlab
