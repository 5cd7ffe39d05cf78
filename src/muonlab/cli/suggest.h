// "did you mean ...?" for a mistyped subcommand or flag: the known name
// nearest to the unknown one by edit distance, when it is near enough to be
// a typo (at most 2 edits, or a third of the name).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace muonlab::cli {

// Levenshtein distance (insertions, deletions, substitutions).
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate nearest to `typed`, or "" when none is near.
std::string nearest_name(const std::string& typed, const std::vector<std::string>& candidates);

// For argv as parsed by `app`: "did you mean 'train'?" for the first word
// that is not a subcommand, or "did you mean '--seq-len'?" for the first
// "--flag" the chosen subcommand does not know; "" when neither applies.
std::string suggestion(CLI::App& app, int argc, char** argv);

// "" when `word` names a subcommand of `app`; else "'trian' is not a
// muonlab subcommand" with "; did you mean 'train'?" when one is near.
std::string unknown_subcommand_message(CLI::App& app, const std::string& word);

}  // namespace muonlab::cli
