// The order a reader expects variant names and sweep conditions in: numbers
// inside them compared by value, so g2 < g6 < g12, muon-k3 < muon-k10, and
// "data.batch_size=4" < "data.batch_size=16" < "data.batch_size=32" (plain
// string order puts 16 and 32 before 4), decimals included
// ("weight_decay=0.05" < "weight_decay=0.1").
#pragma once

#include <string>

namespace muonlab::sweep {

// Strict weak order: runs of text compared as bytes, numbers
// ([0-9]+(.[0-9]+)?([eE][+-]?[0-9]+)?) by value, equal values by their text.
bool natural_less(const std::string& a, const std::string& b);

struct NaturalLess {
  bool operator()(const std::string& a, const std::string& b) const { return natural_less(a, b); }
};

}  // namespace muonlab::sweep
