// "did you mean ...?" for a mistyped subcommand or flag: the known name
// nearest to the unknown one (core/nearest_name.h).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace muonlab::cli {

// For argv as parsed by `app`: "did you mean 'train'?" for the first word
// that is not a subcommand, or "did you mean '--seq-len'?" for the first
// "--flag" the chosen subcommand does not know; "" when neither applies.
std::string suggestion(CLI::App& app, int argc, char** argv);

// "" when `word` names a subcommand of `app`; else "'trian' is not a
// muonlab subcommand" with "; did you mean 'train'?" when one is near.
std::string unknown_subcommand_message(CLI::App& app, const std::string& word);

}  // namespace muonlab::cli
