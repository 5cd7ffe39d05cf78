#include "muonlab/sweep/sweep_spec.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "muonlab/core/errors.h"
#include "muonlab/core/nearest_name.h"
#include "muonlab/core/read_file.h"
#include "muonlab/training/train_config.h"

namespace muonlab::sweep {
namespace fs = std::filesystem;
namespace {

// "spec.toml:12" for a node read from the file.
std::string where(const SweepSpec& spec, const toml::node& node) {
  return fmt::format("{}:{}", spec.path, node.source().begin.line);
}

// A scalar as --set takes it: strings bare, numbers as written by TOML.
std::string value_text(const SweepSpec& spec, const std::string& key, const toml::node& node) {
  if (node.is_string()) return node.as_string()->get();
  if (node.is_integer()) return std::to_string(node.as_integer()->get());
  if (node.is_floating_point()) return fmt::format("{}", node.as_floating_point()->get());
  if (node.is_boolean()) return node.as_boolean()->get() ? "true" : "false";
  if (node.is_array()) {
    std::ostringstream out;
    out << toml::toml_formatter(*node.as_array());
    return out.str();
  }
  fail("{}: '{}': expected a string, number, boolean or array value", where(spec, node), key);
}

// A value listed twice would name two runs alike, and both would train in
// one folder.
void refuse_repeated_value(const SweepSpec& spec, const std::string& key, const toml::node& item,
                           std::set<std::string>& seen, const std::string& value) {
  if (!seen.insert(value).second) {
    fail("{}: '{}' lists {} twice: each value names a run (and its folder), so each may appear once",
         where(spec, item), key, value);
  }
}

// A non-empty array's items as --set values, none repeated.
std::vector<std::string> values_of(const SweepSpec& spec, const std::string& key, const toml::node& node) {
  const toml::array* array = node.as_array();
  if (array == nullptr) fail("{}: '{}': expected an array of values", where(spec, node), key);
  if (array->empty()) fail("{}: '{}' has no values, so the grid is empty", where(spec, node), key);
  std::vector<std::string> values;
  std::set<std::string> seen;
  for (const auto& item : *array) {
    values.push_back(value_text(spec, key, item));
    refuse_repeated_value(spec, key, item, seen, values.back());
  }
  return values;
}

// "data.batch_size, run.steps" -> {"data.batch_size", "run.steps"}.
std::vector<std::string> axis_keys(const std::string& written) {
  std::vector<std::string> keys;
  size_t start = 0;
  while (true) {
    const size_t comma = written.find(',', start);
    const std::string key = written.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto first = key.find_first_not_of(" \t");
    const auto last = key.find_last_not_of(" \t");
    keys.push_back(first == std::string::npos ? "" : key.substr(first, last - first + 1));
    if (comma == std::string::npos) return keys;
    start = comma + 1;
  }
}

// An [axes] entry: one key and a list of values, or linked keys and a list
// of points, each an array with one value per key.
SweepAxis read_axis(const SweepSpec& spec, const std::string& written, const toml::node& node) {
  SweepAxis axis;
  axis.keys = axis_keys(written);
  for (const auto& key : axis.keys) {
    if (key.empty()) fail("{}: axis '{}': an empty key; linked keys are written \"key1, key2\"", where(spec, node), written);
  }
  if (axis.keys.size() == 1) {
    for (auto& value : values_of(spec, written, node)) axis.points.push_back({std::move(value)});
    return axis;
  }
  const toml::array* array = node.as_array();
  if (array == nullptr) fail("{}: '{}': expected an array of points", where(spec, node), written);
  if (array->empty()) fail("{}: '{}' has no values, so the grid is empty", where(spec, node), written);
  std::set<std::string> seen;
  for (const auto& item : *array) {
    const toml::array* point = item.as_array();
    if (point == nullptr || point->size() != axis.keys.size()) {
      fail("{}: '{}': each point must be an array of {} values, one per key", where(spec, item), written,
           axis.keys.size());
    }
    std::vector<std::string> values;
    for (size_t i = 0; i < point->size(); ++i) values.push_back(value_text(spec, axis.keys[i], *point->get(i)));
    refuse_repeated_value(spec, written, item, seen, fmt::format("[{}]", fmt::join(values, ", ")));
    axis.points.push_back(std::move(values));
  }
  return axis;
}

void check_known_keys(const SweepSpec& spec, const toml::table& table, const std::string& section,
                      const std::set<std::string>& known) {
  for (const auto& [key, node] : table) {
    if (!known.count(std::string(key.str()))) {
      fail("{}: unknown key '{}' in {}{}; expected one of {}", where(spec, node), key.str(), section,
           did_you_mean(std::string(key.str()), {known.begin(), known.end()}), fmt::join(known, ", "));
    }
  }
}

// A `set` array: "key=value" strings, as --set takes them.
std::vector<std::string> overrides_of(const SweepSpec& spec, const std::string& owner, const toml::node& set) {
  const toml::array* array = set.as_array();
  if (array == nullptr) fail("{}: {}: set: expected an array of \"key=value\" strings", where(spec, set), owner);
  std::vector<std::string> overrides;
  for (const auto& entry : *array) {
    if (!entry.is_string() || entry.as_string()->get().find('=') == std::string::npos) {
      fail("{}: {}: set entries are \"key=value\" strings", where(spec, entry), owner);
    }
    overrides.push_back(entry.as_string()->get());
  }
  return overrides;
}

void read_sweep_section(SweepSpec& spec, const toml::table& sweep) {
  check_known_keys(spec, sweep, "[sweep]",
                   {"name", "base", "baseline", "parallel", "retries", "target_loss", "lr_extensions", "set"});
  const auto text = [&](const char* key) -> std::string {
    const toml::node* node = sweep.get(key);
    if (node == nullptr) fail("{}: [sweep] needs '{}'", spec.path, key);
    if (!node->is_string()) fail("{}: [sweep] '{}': expected a string", where(spec, *node), key);
    return node->as_string()->get();
  };
  spec.name = text("name");
  spec.base = (fs::path(spec.path).parent_path() / text("base")).lexically_normal().string();
  spec.baseline = text("baseline");
  if (const toml::node* node = sweep.get("parallel")) {
    if (!node->is_integer() || node->as_integer()->get() < 1) {
      fail("{}: [sweep] 'parallel': expected an integer >= 1", where(spec, *node));
    }
    spec.parallel = node->as_integer()->get();
  }
  if (const toml::node* node = sweep.get("retries")) {
    if (!node->is_integer() || node->as_integer()->get() < 0) {
      fail("{}: [sweep] 'retries': expected an integer >= 0", where(spec, *node));
    }
    spec.retries = node->as_integer()->get();
  }
  if (const toml::node* node = sweep.get("lr_extensions")) {
    if (!node->is_integer() || node->as_integer()->get() < 0) {
      fail("{}: [sweep] 'lr_extensions': expected an integer >= 0", where(spec, *node));
    }
    spec.lr_extensions = node->as_integer()->get();
  }
  if (const toml::node* node = sweep.get("set")) spec.common_overrides = overrides_of(spec, "[sweep]", *node);
  if (const toml::node* node = sweep.get("target_loss")) {
    if (!node->is_number()) fail("{}: [sweep] 'target_loss': expected a number", where(spec, *node));
    spec.target_loss = node->value<double>();
    if (!(*spec.target_loss > 0) || !std::isfinite(*spec.target_loss)) {
      fail("{}: [sweep] 'target_loss' = {}: expected a loss > 0 for the runs to reach", where(spec, *node),
           *spec.target_loss);
    }
  }
}

void read_variants(SweepSpec& spec, const toml::node* node) {
  if (node == nullptr || !node->is_array_of_tables() || node->as_array()->empty()) {
    fail("{}: no [[variant]] tables: a sweep compares at least one optimizer variant", spec.path);
  }
  std::set<std::string> names;
  for (const auto& item : *node->as_array()) {
    const toml::table& table = *item.as_table();
    check_known_keys(spec, table, "[[variant]]", {"name", "set", "lr"});
    SweepVariant variant;
    const toml::node* name = table.get("name");
    if (name == nullptr || !name->is_string() || name->as_string()->get().empty()) {
      fail("{}: a [[variant]] needs a non-empty 'name'", where(spec, item));
    }
    variant.name = name->as_string()->get();
    if (variant.name.find_first_of("/=,") != std::string::npos) {
      fail("{}: variant name '{}' may not contain '/', '=' or ','", where(spec, *name), variant.name);
    }
    if (!names.insert(variant.name).second) fail("{}: variant '{}' appears twice", where(spec, *name), variant.name);
    if (const toml::node* set = table.get("set")) variant.overrides = overrides_of(spec, "variant '" + variant.name + "'", *set);
    if (const toml::node* lr = table.get("lr")) variant.lrs = values_of(spec, variant.name + ".lr", *lr);
    spec.variants.push_back(std::move(variant));
  }
}

std::string run_id(const std::string& variant, const std::string& lr,
                   const std::vector<std::pair<std::string, std::string>>& axis_values) {
  std::vector<std::string> parts;
  if (!lr.empty()) parts.push_back("lr=" + lr);
  for (const auto& [key, value] : axis_values) parts.push_back(key + "=" + value);
  return parts.empty() ? variant : fmt::format("{}/{}", variant, fmt::join(parts, ","));
}

}  // namespace

SweepSpec load_sweep_spec(const std::string& path, const std::vector<std::string>& extra_overrides) {
  SweepSpec spec;
  spec.path = path;
  toml::table root;
  try {
    root = toml::parse(read_whole_file(path), path);
  } catch (const toml::parse_error& error) {
    fail("{}:{}: not valid TOML: {}", path, error.source().begin.line, error.description());
  }
  // A train config given as a spec: say so, not only that [model] is unknown.
  if (!root.contains("sweep") && (root.contains("model") || root.contains("run") || root.contains("data"))) {
    fail("{}: a train config, not a sweep spec (no [sweep], and [model], [data] or [run]): train it with `muonlab "
         "train {}`, or name it as a spec's [sweep] base",
         path, path);
  }
  check_known_keys(spec, root, "the spec", {"sweep", "axes", "variant"});
  const toml::table* sweep = root["sweep"].as_table();
  if (sweep == nullptr) fail("{}: missing [sweep] (name, base, baseline)", path);
  read_sweep_section(spec, *sweep);
  if (const toml::table* axes = root["axes"].as_table()) {
    std::set<std::string> axis_keys_seen;
    for (const auto& [key, node] : *axes) {
      spec.axes.push_back(read_axis(spec, std::string(key.str()), node));
      for (const auto& axis_key : spec.axes.back().keys) {
        if (!axis_keys_seen.insert(axis_key).second) {
          fail("{}: axis key '{}' appears in two axes; each key belongs to one", where(spec, node), axis_key);
        }
      }
    }
  }
  read_variants(spec, root.get("variant"));
  spec.common_overrides.insert(spec.common_overrides.end(), extra_overrides.begin(), extra_overrides.end());
  bool baseline_found = false;
  std::vector<std::string> names;
  for (const auto& variant : spec.variants) {
    names.push_back(variant.name);
    baseline_found |= variant.name == spec.baseline;
  }
  if (!baseline_found) {
    fail("{}: [sweep] baseline '{}' is not a variant; the variants are {}", path, spec.baseline,
         fmt::join(names, ", "));
  }
  if (!fs::exists(spec.base)) fail("{}: [sweep] base '{}' not found", path, spec.base);
  for (const auto& run : expand_sweep(spec)) {
    try {
      training::load_train_config(spec.base, run.overrides);
    } catch (const Error& error) {
      fail("{}: run '{}': {}", path, run.id, error.what());
    }
  }
  return spec;
}

std::vector<SweepRun> expand_sweep(const SweepSpec& spec) {
  // The axes' combinations, the last axis varying fastest; a linked axis's
  // point sets all its keys.
  std::vector<std::vector<std::pair<std::string, std::string>>> combinations = {{}};
  for (const auto& axis : spec.axes) {
    std::vector<std::vector<std::pair<std::string, std::string>>> extended;
    for (const auto& combination : combinations) {
      for (const auto& point : axis.points) {
        extended.push_back(combination);
        for (size_t i = 0; i < axis.keys.size(); ++i) extended.back().emplace_back(axis.keys[i], point[i]);
      }
    }
    combinations = std::move(extended);
  }
  std::vector<SweepRun> runs;
  for (const auto& variant : spec.variants) {
    const std::vector<std::string> lrs = variant.lrs.empty() ? std::vector<std::string>{""} : variant.lrs;
    for (const auto& lr : lrs) {
      for (const auto& combination : combinations) {
        SweepRun run;
        run.variant = variant.name;
        run.lr = lr;
        run.axis_values = combination;
        run.id = run_id(variant.name, lr, combination);
        run.overrides = spec.common_overrides;
        run.overrides.insert(run.overrides.end(), variant.overrides.begin(), variant.overrides.end());
        if (!lr.empty()) run.overrides.push_back("optimizer.lr=" + lr);
        for (const auto& [key, value] : combination) run.overrides.push_back(key + "=" + value);
        runs.push_back(std::move(run));
      }
    }
  }
  return runs;
}

}  // namespace muonlab::sweep
