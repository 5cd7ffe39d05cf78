// The known name nearest to a mistyped one, for "did you mean ...?" in
// error messages: by edit distance, when it is near enough to be a typo (at
// most 2 edits, or a third of the name).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace muonlab {

// Levenshtein distance (insertions, deletions, substitutions).
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate nearest to `typed`, or "" when none is near.
std::string nearest_name(const std::string& typed, const std::vector<std::string>& candidates);

// " (did you mean 'steps'?)" for the candidate nearest to `typed`, or "" when
// none is near: the parenthesis error messages put after the unknown name.
std::string did_you_mean(const std::string& typed, const std::vector<std::string>& candidates);

}  // namespace muonlab
