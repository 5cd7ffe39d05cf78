#include "muonlab/sweep/lr_bracket.h"

#include <fmt/format.h>

#include <cmath>

#include "muonlab/core/errors.h"

namespace muonlab::sweep {

LrBracket lr_bracket(const std::map<double, double>& mean_loss_by_lr) {
  if (mean_loss_by_lr.empty()) fail("lr_bracket: no learning rates");
  if (mean_loss_by_lr.size() == 1) return LrBracket::kSingle;
  auto best = mean_loss_by_lr.begin();
  for (auto it = mean_loss_by_lr.begin(); it != mean_loss_by_lr.end(); ++it) {
    if (it->second < best->second) best = it;
  }
  if (best == mean_loss_by_lr.begin()) return LrBracket::kLowEdge;
  if (std::next(best) == mean_loss_by_lr.end()) return LrBracket::kHighEdge;
  return LrBracket::kInside;
}

const char* describe(LrBracket bracket) {
  switch (bracket) {
    case LrBracket::kSingle: return "one lr, not tuned";
    case LrBracket::kInside: return "bracketed";
    case LrBracket::kLowEdge: return "best at the grid's low edge";
    case LrBracket::kHighEdge: return "best at the grid's high edge";
  }
  return "?";
}

std::optional<std::string> lr_beyond_edge(const std::map<double, double>& mean_loss_by_lr) {
  const LrBracket bracket = lr_bracket(mean_loss_by_lr);
  if (bracket == LrBracket::kSingle || bracket == LrBracket::kInside) return std::nullopt;
  if (bracket == LrBracket::kHighEdge) {
    const double top = std::prev(mean_loss_by_lr.end())->first;
    const double below = std::prev(mean_loss_by_lr.end(), 2)->first;
    return fmt::format("{:.6g}", top * (top / below));
  }
  const double bottom = mean_loss_by_lr.begin()->first;
  const double above = std::next(mean_loss_by_lr.begin())->first;
  return fmt::format("{:.6g}", bottom * (bottom / above));
}

double parse_lr(const std::string& lr) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(lr, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != lr.size() || !(value > 0) || !std::isfinite(value)) {
    fail("learning rate '{}': expected a positive number", lr);
  }
  return value;
}

}  // namespace muonlab::sweep
