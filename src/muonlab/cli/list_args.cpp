#include "muonlab/cli/list_args.h"

#include <stdexcept>

#include "muonlab/core/errors.h"

namespace muonlab::cli {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::string item;
  for (char c : text + ",") {
    if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
      if (!item.empty()) items.push_back(item);
      item.clear();
    } else {
      item.push_back(c);
    }
  }
  return items;
}

std::vector<int64_t> parse_token_ids(const std::string& text, const std::string& what) {
  std::string body = text;
  size_t open = body.find_first_not_of(" \t\r\n");
  if (open != std::string::npos && body[open] == '[') {
    size_t close = body.find_last_not_of(" \t\r\n");
    if (body[close] != ']') fail("{}: '[' without a closing ']'", what);
    body = body.substr(open + 1, close - open - 1);
  }
  std::vector<int64_t> ids;
  for (const auto& item : split_list(body)) {
    try {
      size_t used = 0;
      ids.push_back(std::stoll(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      fail("{}: '{}' is not an integer token id (expected e.g. 464,3290,318)", what, item);
    }
  }
  return ids;
}

}  // namespace muonlab::cli
