#include "muonlab/sweep/natural_order.h"

#include <cctype>
#include <cstdlib>

namespace muonlab::sweep {
namespace {

bool is_digit(const std::string& s, size_t i) { return i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); }

// The end of the number starting at `begin` (a digit).
size_t number_end(const std::string& s, size_t begin) {
  size_t i = begin;
  while (is_digit(s, i)) ++i;
  if (i < s.size() && s[i] == '.' && is_digit(s, i + 1)) {
    ++i;
    while (is_digit(s, i)) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    if (is_digit(s, j)) {
      while (is_digit(s, j)) ++j;
      i = j;
    }
  }
  return i;
}

}  // namespace

bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (is_digit(a, i) && is_digit(b, j)) {
      const size_t i_end = number_end(a, i), j_end = number_end(b, j);
      const std::string x = a.substr(i, i_end - i), y = b.substr(j, j_end - j);
      const double x_value = std::strtod(x.c_str(), nullptr), y_value = std::strtod(y.c_str(), nullptr);
      if (x_value != y_value) return x_value < y_value;
      if (x != y) return x < y;  // 1e-3 and 0.001: one order, whichever
      i = i_end;
      j = j_end;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

}  // namespace muonlab::sweep
