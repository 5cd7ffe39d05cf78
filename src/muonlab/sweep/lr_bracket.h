// Whether a learning-rate grid brackets a variant's best lr. A best lr at
// the grid's edge says only that the optimum lies at or beyond it: comparing
// variants there compares a tuned one with an untuned one. The runner
// extends such grids by one geometric step outwards; the report marks any
// that are still at an edge.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace muonlab::sweep {

enum class LrBracket {
  kSingle,    // one lr: not tuned at all
  kInside,    // the best lr has a worse one on each side
  kLowEdge,   // the best is the smallest lr tried
  kHighEdge,  // the best is the largest lr tried
};

// Where the lowest mean loss sits among the lrs tried (lr -> mean loss;
// ties go to the smaller lr). Fails on an empty map.
LrBracket lr_bracket(const std::map<double, double>& mean_loss_by_lr);

const char* describe(LrBracket bracket);

// The lr one geometric step beyond the edge the best sits on (the ratio of
// the two lrs at that edge: 0.01, 0.02 -> 0.04 above, 0.005 below), as a
// --set value; nullopt when the best is bracketed or the grid has one lr.
std::optional<std::string> lr_beyond_edge(const std::map<double, double>& mean_loss_by_lr);

// An lr as the spec writes it, parsed; fails naming it when it is not a
// positive number.
double parse_lr(const std::string& lr);

}  // namespace muonlab::sweep
