// Lists typed on the command line or piped in: "a, b,c", "464 3290 318",
// "[464, 3290]". One splitter for every command that takes a list.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace muonlab::cli {

// Items separated by commas and/or whitespace; empty items are dropped.
std::vector<std::string> split_list(const std::string& text);

// Token ids as above, optionally inside one pair of [ ] (a JSON array).
// Fails naming `what` and the item that is not an integer.
std::vector<int64_t> parse_token_ids(const std::string& text, const std::string& what);

}  // namespace muonlab::cli
