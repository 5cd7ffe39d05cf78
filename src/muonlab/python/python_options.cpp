#include "muonlab/python/python_options.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

#include <algorithm>
#include <functional>
#include <vector>

#include "muonlab/core/enum_names.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/nearest_name.h"

namespace muonlab::python {

namespace {

// One option: how to read it from Python into the options struct, and how
// to write its value (the default) back out.
template <typename Options>
struct OptionKey {
  const char* name;
  std::function<void(Options&, const py::handle&)> read;
  std::function<py::object(const Options&)> write;
};

// `hint` is a " (did you mean ...?)" for a mistyped name, or "".
[[noreturn]] void bad_value(const char* name, const py::handle& value, const std::string& expected,
                            const std::string& hint = "") {
  throw py::value_error(
      fmt::format("option {}={}{}: expected {}", name, py::repr(value).cast<std::string>(), hint, expected));
}

double as_number(const char* name, const py::handle& value) {
  if (py::isinstance<py::bool_>(value) || !(py::isinstance<py::float_>(value) || py::isinstance<py::int_>(value))) {
    // A 0-dim tensor (an LR scheduler's tensor lr) is a number too.
    if (py::hasattr(value, "item") && !py::isinstance<py::bool_>(value)) return as_number(name, value.attr("item")());
    bad_value(name, value, "a number");
  }
  return value.cast<double>();
}

int64_t as_integer(const char* name, const py::handle& value) {
  if (py::isinstance<py::bool_>(value) || !py::isinstance<py::int_>(value)) bad_value(name, value, "an integer");
  return value.cast<int64_t>();
}

bool as_bool(const char* name, const py::handle& value) {
  if (!py::isinstance<py::bool_>(value)) bad_value(name, value, "True or False");
  return value.cast<bool>();
}

// "'a', 'b' or 'c'": accepted names as Python writes strings.
std::string quoted_alternatives(const std::vector<std::string>& names) {
  std::vector<std::string> quoted;
  for (const auto& name : names) quoted.push_back("'" + name + "'");
  return alternatives(quoted);
}

// A string option parsed by muonlab's own parser. A refused value is
// answered with `expected` (by default the accepted names) and, for a near
// typo, the name meant.
template <typename T>
T as_choice(const char* name, const py::handle& value, T (*parse)(const std::string&),
            const std::vector<std::string>& accepted, std::string expected = "") {
  if (expected.empty()) expected = quoted_alternatives(accepted);
  if (!py::isinstance<py::str>(value)) bad_value(name, value, expected);
  const auto text = value.cast<std::string>();
  try {
    return parse(text);
  } catch (const Error&) {
    bad_value(name, value, expected, did_you_mean(text, accepted));
  }
}

// An enum option: as_choice with the enum's name table.
template <typename Enum>
Enum as_enum(const char* name, const py::handle& value, Enum (*parse)(const std::string&),
             const EnumNames<Enum>& names, std::string expected = "") {
  return as_choice(name, value, parse, enum_name_list(names), std::move(expected));
}

// "jordan", "taylor", "polar_express", or a list of (a, b, c) triples.
optim::NsSchedule as_schedule(const char* name, const py::handle& value) {
  const std::string expected = "'jordan', 'taylor', 'polar_express' or a list of (a, b, c) triples";
  if (py::isinstance<py::str>(value)) {
    return as_choice(name, value, &optim::ns_schedule, optim::ns_preset_names(), expected);
  }
  if (!py::isinstance<py::sequence>(value) || py::len(value) == 0) bad_value(name, value, expected);
  std::vector<optim::NsCoefficients> triples;
  for (const auto& item : value) {
    if (!py::isinstance<py::sequence>(item) || py::isinstance<py::str>(item) || py::len(item) != 3) {
      bad_value(name, value, expected);
    }
    const auto triple = item.cast<py::sequence>();
    triples.push_back({as_number(name, triple[0]), as_number(name, triple[1]), as_number(name, triple[2])});
  }
  return optim::ns_schedule_custom(triples);
}

py::object schedule_value(const optim::NsSchedule& schedule) {
  if (schedule.name != "custom") return py::str(schedule.name);
  py::list triples;
  for (const auto& t : schedule.triples) triples.append(py::make_tuple(t.a, t.b, t.c));
  return triples;
}

std::vector<std::string> grouped_names(const optim::GroupedProjections& g) {
  std::vector<std::string> names;
  if (g.q) names.push_back("q");
  if (g.k) names.push_back("k");
  if (g.v) names.push_back("v");
  if (g.o) names.push_back("o");
  if (g.mla_up) names.push_back("mla_up");
  return names;
}

optim::GroupedProjections as_grouped(const char* name, const py::handle& value) {
  const std::string expected = "a list of 'q', 'k', 'v', 'o', 'mla_up'";
  if (py::isinstance<py::str>(value) || !py::isinstance<py::sequence>(value)) bad_value(name, value, expected);
  std::vector<std::string> names;
  for (const auto& item : value) {
    if (!py::isinstance<py::str>(item)) bad_value(name, value, expected);
    names.push_back(item.cast<std::string>());
  }
  try {
    return optim::parse_grouped_projections(names);
  } catch (const Error&) {
    bad_value(name, value, expected);
  }
}

using MuonKey = OptionKey<optim::MuonOptions>;
using optim::MuonOptions;

const std::vector<MuonKey>& muon_keys() {
  static const std::vector<MuonKey> keys{
      {"lr", [](MuonOptions& o, const py::handle& v) { o.lr(as_number("lr", v)); },
       [](const MuonOptions& o) -> py::object { return py::float_(o.lr()); }},
      {"momentum", [](MuonOptions& o, const py::handle& v) { o.momentum(as_number("momentum", v)); },
       [](const MuonOptions& o) -> py::object { return py::float_(o.momentum()); }},
      {"nesterov", [](MuonOptions& o, const py::handle& v) { o.nesterov(as_bool("nesterov", v)); },
       [](const MuonOptions& o) -> py::object { return py::bool_(o.nesterov()); }},
      {"momentum_kind",
       [](MuonOptions& o, const py::handle& v) {
         o.momentum_kind(as_enum("momentum_kind", v, &optim::parse_momentum_kind, optim::momentum_kind_names()));
       },
       [](const MuonOptions& o) -> py::object { return py::str(optim::to_string(o.momentum_kind())); }},
      {"ns_steps", [](MuonOptions& o, const py::handle& v) { o.ns_steps(as_integer("ns_steps", v)); },
       [](const MuonOptions& o) -> py::object { return py::int_(o.ns_steps()); }},
      {"ns_coefficients",
       [](MuonOptions& o, const py::handle& v) { o.ns_coefficients(as_schedule("ns_coefficients", v)); },
       [](const MuonOptions& o) -> py::object { return schedule_value(o.ns_coefficients()); }},
      {"ns_dtype",
       [](MuonOptions& o, const py::handle& v) {
         o.ns_dtype(as_enum("ns_dtype", v, &optim::parse_ns_dtype, optim::ns_dtype_names()));
       },
       [](const MuonOptions& o) -> py::object { return py::str(optim::to_string(o.ns_dtype())); }},
      {"ns_eps",
       [](MuonOptions& o, const py::handle& v) {
         o.eps(v.is_none() ? std::nullopt : std::optional<double>(as_number("ns_eps", v)));
       },
       [](const MuonOptions& o) -> py::object { return o.eps() ? py::object(py::float_(*o.eps())) : py::none(); }},
      {"ns_batching",
       [](MuonOptions& o, const py::handle& v) {
         o.ns_batching(as_enum("ns_batching", v, &optim::parse_ns_batching, optim::ns_batching_names()));
       },
       [](const MuonOptions& o) -> py::object {
         return py::str(enum_name(optim::ns_batching_names(), o.ns_batching()));
       }},
      {"ns_method",
       [](MuonOptions& o, const py::handle& v) {
         o.ns_method(as_enum("ns_method", v, &optim::parse_ns_method, optim::ns_method_names()));
       },
       [](const MuonOptions& o) -> py::object { return py::str(optim::to_string(o.ns_method())); }},
      {"gram_restart", [](MuonOptions& o, const py::handle& v) { o.gram_restart(as_integer("gram_restart", v)); },
       [](const MuonOptions& o) -> py::object { return py::int_(o.gram_restart()); }},
      {"scale_rule",
       [](MuonOptions& o, const py::handle& v) {
         o.scale_rule(as_enum("scale_rule", v, &optim::parse_scale_rule, optim::scale_rule_names()));
       },
       [](const MuonOptions& o) -> py::object { return py::str(optim::to_string(o.scale_rule())); }},
      {"weight_decay", [](MuonOptions& o, const py::handle& v) { o.weight_decay(as_number("weight_decay", v)); },
       [](const MuonOptions& o) -> py::object { return py::float_(o.weight_decay()); }},
      {"orthogonalize", [](MuonOptions& o, const py::handle& v) { o.orthogonalize(as_bool("orthogonalize", v)); },
       [](const MuonOptions& o) -> py::object { return py::bool_(o.orthogonalize()); }},
      {"fused", [](MuonOptions& o, const py::handle& v) { o.fused(as_bool("fused", v)); },
       [](const MuonOptions& o) -> py::object { return py::bool_(o.fused()); }},
      {"cuda_graph", [](MuonOptions& o, const py::handle& v) { o.cuda_graph(as_bool("cuda_graph", v)); },
       [](const MuonOptions& o) -> py::object { return py::bool_(o.cuda_graph()); }},
      {"second_moment",
       [](MuonOptions& o, const py::handle& v) {
         o.second_moment(as_enum("second_moment", v, &optim::parse_second_moment_kind,
                                 optim::second_moment_kind_names(),
                                 "'none' (Muon), 'full' (Muon2) or 'factored' (Muon2-F)"));
       },
       [](const MuonOptions& o) -> py::object { return py::str(optim::to_string(o.second_moment())); }},
      {"beta2", [](MuonOptions& o, const py::handle& v) { o.beta2(as_number("beta2", v)); },
       [](const MuonOptions& o) -> py::object { return py::float_(o.beta2()); }},
      {"second_moment_eps",
       [](MuonOptions& o, const py::handle& v) { o.second_moment_eps(as_number("second_moment_eps", v)); },
       [](const MuonOptions& o) -> py::object { return py::float_(o.second_moment_eps()); }},
      {"bias_correction",
       [](MuonOptions& o, const py::handle& v) { o.bias_correction(as_bool("bias_correction", v)); },
       [](const MuonOptions& o) -> py::object { return py::bool_(o.bias_correction()); }},
      {"neuron_norm", [](MuonOptions& o, const py::handle& v) { o.neuron_norm(as_bool("neuron_norm", v)); },
       [](const MuonOptions& o) -> py::object { return py::bool_(o.neuron_norm()); }},
      {"neuron_beta2", [](MuonOptions& o, const py::handle& v) { o.neuron_beta2(as_number("neuron_beta2", v)); },
       [](const MuonOptions& o) -> py::object { return py::float_(o.neuron_beta2()); }},
      {"neuron_eps", [](MuonOptions& o, const py::handle& v) { o.neuron_eps(as_number("neuron_eps", v)); },
       [](const MuonOptions& o) -> py::object { return py::float_(o.neuron_eps()); }},
      {"group_size", [](MuonOptions& o, const py::handle& v) { o.group_size(as_integer("group_size", v)); },
       [](const MuonOptions& o) -> py::object { return py::int_(o.group_size()); }},
      {"grouping",
       [](MuonOptions& o, const py::handle& v) {
         o.grouping_rule(
             as_enum("grouping", v, &optim::parse_grouping_rule, optim::grouping_rule_names()));
       },
       [](const MuonOptions& o) -> py::object { return py::str(optim::to_string(o.grouping_rule())); }},
      {"grouping_seed",
       [](MuonOptions& o, const py::handle& v) {
         const int64_t seed = as_integer("grouping_seed", v);
         if (seed < 0) bad_value("grouping_seed", v, "an integer >= 0");
         o.grouping_seed(static_cast<uint64_t>(seed));
       },
       [](const MuonOptions& o) -> py::object { return py::int_(o.grouping_seed()); }},
      {"grouped", [](MuonOptions& o, const py::handle& v) { o.grouped_projections(as_grouped("grouped", v)); },
       [](const MuonOptions& o) -> py::object { return py::cast(grouped_names(o.grouped_projections())); }},
      {"block_scale", [](MuonOptions& o, const py::handle& v) { o.block_scale(as_bool("block_scale", v)); },
       [](const MuonOptions& o) -> py::object { return py::bool_(o.block_scale()); }},
      {"nd_params",
       [](MuonOptions& o, const py::handle& v) {
         o.nd_params(as_enum("nd_params", v, &optim::parse_nd_params, optim::nd_params_names()));
       },
       [](const MuonOptions& o) -> py::object { return py::str(optim::to_string(o.nd_params())); }},
  };
  return keys;
}

using AdamWKey = OptionKey<optim::AdamWOptions>;
using optim::AdamWOptions;

const std::vector<AdamWKey>& adamw_keys() {
  static const std::vector<AdamWKey> keys{
      {"lr", [](AdamWOptions& o, const py::handle& v) { o.lr(as_number("lr", v)); },
       [](const AdamWOptions& o) -> py::object { return py::float_(o.lr()); }},
      {"betas",
       [](AdamWOptions& o, const py::handle& v) {
         if (py::isinstance<py::str>(v) || !py::isinstance<py::sequence>(v) || py::len(v) != 2) {
           bad_value("betas", v, "a pair (beta1, beta2)");
         }
         const auto pair = v.cast<py::sequence>();
         o.betas(std::make_tuple(as_number("betas", pair[0]), as_number("betas", pair[1])));
       },
       [](const AdamWOptions& o) -> py::object {
         return py::make_tuple(std::get<0>(o.betas()), std::get<1>(o.betas()));
       }},
      {"eps", [](AdamWOptions& o, const py::handle& v) { o.eps(as_number("eps", v)); },
       [](const AdamWOptions& o) -> py::object { return py::float_(o.eps()); }},
      {"weight_decay", [](AdamWOptions& o, const py::handle& v) { o.weight_decay(as_number("weight_decay", v)); },
       [](const AdamWOptions& o) -> py::object { return py::float_(o.weight_decay()); }},
      {"bias_correction",
       [](AdamWOptions& o, const py::handle& v) { o.bias_correction(as_bool("bias_correction", v)); },
       [](const AdamWOptions& o) -> py::object { return py::bool_(o.bias_correction()); }},
  };
  return keys;
}

template <typename Options>
py::dict write_options(const Options& options, const std::vector<OptionKey<Options>>& keys) {
  py::dict out;
  for (const auto& key : keys) out[key.name] = key.write(options);
  return out;
}

template <typename Options>
Options read_options(const py::dict& group, const std::vector<OptionKey<Options>>& keys, bool strict,
                     const char* optimizer) {
  Options options;
  for (const auto& key : keys) {
    if (group.contains(key.name)) key.read(options, group[key.name]);
  }
  if (strict) {
    for (const auto& item : group) {
      const auto name = item.first.cast<std::string>();
      std::vector<std::string> names;
      for (const auto& key : keys) names.emplace_back(key.name);
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        throw py::value_error(fmt::format("unknown {} option '{}'{}: expected one of {}", optimizer, name,
                                          did_you_mean(name, names), fmt::join(names, ", ")));
      }
    }
  }
  try {
    options.validate();
  } catch (const Error& e) {
    throw py::value_error(e.what());
  }
  return options;
}

}  // namespace

py::dict muon_defaults(const std::string& variant) {
  optim::MuonOptions options;
  if (variant == optim::kNorMuonName) return write_options(options.neuron_norm(true), muon_keys());
  const auto kind = find_enum(optim::muon_variant_names(), variant);
  if (!kind) {
    auto accepted = enum_name_list(optim::muon_variant_names());
    accepted.emplace_back(optim::kNorMuonName);
    throw py::value_error(fmt::format("unknown Muon variant '{}'{}: expected {}", variant,
                                      did_you_mean(variant, accepted), alternatives(accepted)));
  }
  options.second_moment(*kind).ns_steps(optim::default_ns_steps(*kind));
  return write_options(options, muon_keys());
}

optim::MuonOptions muon_options_from(const py::dict& group, bool strict) {
  return read_options(group, muon_keys(), strict, "Muon");
}

py::dict adamw_defaults() { return write_options(optim::AdamWOptions(), adamw_keys()); }

optim::AdamWOptions adamw_options_from(const py::dict& group, bool strict) {
  return read_options(group, adamw_keys(), strict, "AdamW");
}

}  // namespace muonlab::python
