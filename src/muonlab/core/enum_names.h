// One name table per enum: the names it reads, writes and lists in errors,
// so that parsing, printing and a config reference cannot disagree.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "muonlab/core/errors.h"
#include "muonlab/core/nearest_name.h"

namespace muonlab {

template <typename Enum>
using EnumNames = std::vector<std::pair<Enum, const char*>>;

// The value named `text`, or nullopt.
template <typename Enum>
std::optional<Enum> find_enum(const EnumNames<Enum>& names, const std::string& text) {
  for (const auto& [value, name] : names) {
    if (text == name) return value;
  }
  return std::nullopt;
}

template <typename Enum>
std::string enum_name(const EnumNames<Enum>& names, Enum value) {
  for (const auto& [v, name] : names) {
    if (v == value) return name;
  }
  return "?";
}

template <typename Enum>
std::vector<std::string> enum_name_list(const EnumNames<Enum>& names) {
  std::vector<std::string> list;
  for (const auto& entry : names) list.emplace_back(entry.second);
  return list;
}

// "a, b or c": the names as an error message lists the accepted values.
inline std::string alternatives(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += i + 1 == names.size() ? " or " : ", ";
    text += names[i];
  }
  return text;
}

template <typename Enum>
std::string alternatives(const EnumNames<Enum>& names) {
  return alternatives(enum_name_list(names));
}

// The value named `text`, or an error naming `what` was read, the name meant
// where `text` is a near typo, and every accepted name:
//   unknown schedule 'cosin' (did you mean 'cosine'?): expected constant, cosine, linear or wsd
template <typename Enum>
Enum parse_enum(const EnumNames<Enum>& names, const std::string& text, const std::string& what) {
  if (auto value = find_enum(names, text)) return *value;
  const auto accepted = enum_name_list(names);
  fail("unknown {} '{}'{}: expected {}", what, text, did_you_mean(text, accepted), alternatives(accepted));
}

}  // namespace muonlab
