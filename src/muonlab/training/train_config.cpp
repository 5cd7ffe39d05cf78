#include "muonlab/training/train_config.h"

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#define TOML_HEADER_ONLY 0
#include <toml++/toml.h>

#include <c10/core/Device.h>
#include <c10/util/Exception.h>

#include "muonlab/core/errors.h"
#include "muonlab/core/read_file.h"
#include "muonlab/optimizers/head_groups.h"

namespace muonlab::training {
namespace {

// One assignment to apply: where it came from, for error messages.
struct Assignment {
  std::string key;  // "section.key"
  toml::node_view<const toml::node> value;
  std::string where;  // "train.toml:12" or "--set run.steps=5"
};

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

int64_t as_integer(const toml::node& node) {
  if (!node.is_integer()) fail("expected an integer, got {}", type_name(node));
  return node.as_integer()->get();
}

double as_number(const toml::node& node) {
  if (node.is_integer()) return static_cast<double>(node.as_integer()->get());
  if (!node.is_floating_point()) fail("expected a number, got {}", type_name(node));
  return node.as_floating_point()->get();
}

bool as_boolean(const toml::node& node) {
  if (!node.is_boolean()) fail("expected true or false, got {}", type_name(node));
  return node.as_boolean()->get();
}

std::string as_string(const toml::node& node) {
  if (!node.is_string()) fail("expected a string, got {}", type_name(node));
  return node.as_string()->get();
}

std::string choice(const toml::node& node, const std::vector<std::string>& allowed) {
  std::string value = as_string(node);
  for (const auto& option : allowed) {
    if (value == option) return value;
  }
  fail("'{}' is not one of {}", value, fmt::join(allowed, ", "));
}

// A model field's value in set_config_field's text syntax.
std::string model_field_text(const toml::node& node) {
  if (node.is_string()) return node.as_string()->get();
  if (node.is_integer()) return std::to_string(node.as_integer()->get());
  if (node.is_floating_point()) return fmt::format("{}", node.as_floating_point()->get());
  if (node.is_boolean()) return node.as_boolean()->get() ? "true" : "false";
  fail("expected a string, number or boolean, got {}", type_name(node));
}

using Reader = std::function<void(const toml::node&)>;

std::map<std::string, Reader> readers(TrainConfig& c) {
  auto integer = [](int64_t& field) { return [&field](const toml::node& n) { field = as_integer(n); }; };
  auto number = [](double& field) { return [&field](const toml::node& n) { field = as_number(n); }; };
  auto boolean = [](bool& field) { return [&field](const toml::node& n) { field = as_boolean(n); }; };
  auto text = [](std::string& field) { return [&field](const toml::node& n) { field = as_string(n); }; };
  auto maybe_integer = [](std::optional<int64_t>& field) {
    return [&field](const toml::node& n) { field = as_integer(n); };
  };
  auto maybe_number = [](std::optional<double>& field) {
    return [&field](const toml::node& n) { field = as_number(n); };
  };
  auto one_of = [](std::string& field, std::vector<std::string> allowed) {
    return [&field, allowed](const toml::node& n) { field = choice(n, allowed); };
  };
  return {
      {"data.train", text(c.data.train)},
      {"data.val", text(c.data.val)},
      {"data.tokenizer", text(c.data.tokenizer)},
      {"data.batch_size", integer(c.data.batch_size)},
      {"data.seq_len", integer(c.data.seq_len)},
      {"data.shuffle", boolean(c.data.shuffle)},
      {"data.seed", integer(c.data.seed)},
      {"optimizer.name", one_of(c.optimizer.name, {"muon", "muon2", "muon2f", "adamw"})},
      {"optimizer.ns_coefficients", one_of(c.optimizer.ns_coefficients, {"jordan", "taylor", "polar_express"})},
      {"optimizer.ns_dtype", one_of(c.optimizer.ns_dtype, {"auto", "bf16", "fp32", "fp64"})},
      {"optimizer.scale_rule", one_of(c.optimizer.scale_rule, {"original", "match_rms_adamw", "spectral", "none"})},
      {"optimizer.orthogonalize", boolean(c.optimizer.orthogonalize)},
      {"optimizer.beta2", number(c.optimizer.beta2)},
      {"optimizer.second_moment_eps", number(c.optimizer.second_moment_eps)},
      {"optimizer.bias_correction", boolean(c.optimizer.bias_correction)},
      {"optimizer.group_size", integer(c.optimizer.group_size)},
      {"optimizer.grouping", one_of(c.optimizer.grouping, {"contiguous", "strided", "random"})},
      {"optimizer.grouped",
       [&c](const toml::node& n) {
         const toml::array* array = n.as_array();
         if (array == nullptr) fail("expected an array of projection names, got {}", type_name(n));
         std::vector<std::string> names;
         for (const auto& item : *array) names.push_back(as_string(item));
         optim::parse_grouped_projections(names);  // names the unknown entry
         c.optimizer.grouped = names;
       }},
      {"optimizer.block_scale", boolean(c.optimizer.block_scale)},
      {"optimizer.grouping_seed", integer(c.optimizer.grouping_seed)},
      {"optimizer.lr", number(c.optimizer.lr)},
      {"optimizer.momentum", number(c.optimizer.momentum)},
      {"optimizer.nesterov", boolean(c.optimizer.nesterov)},
      {"optimizer.ns_steps", integer(c.optimizer.ns_steps)},
      {"optimizer.weight_decay", number(c.optimizer.weight_decay)},
      {"optimizer.adamw_lr", number(c.optimizer.adamw_lr)},
      {"optimizer.adamw_betas",
       [&c](const toml::node& n) {
         const toml::array* array = n.as_array();
         if (array == nullptr || array->size() != 2) fail("expected an array of two numbers, got {}", type_name(n));
         c.optimizer.adamw_betas = {as_number(*array->get(0)), as_number(*array->get(1))};
       }},
      {"optimizer.adamw_eps", number(c.optimizer.adamw_eps)},
      {"optimizer.adamw_weight_decay", number(c.optimizer.adamw_weight_decay)},
      {"schedule.kind", [&c](const toml::node& n) { c.schedule.kind = parse_schedule_kind(as_string(n)); }},
      {"schedule.warmup_steps", integer(c.schedule.warmup_steps)},
      {"schedule.min_ratio", number(c.schedule.min_ratio)},
      {"schedule.decay_fraction", number(c.schedule.decay_fraction)},
      {"schedule.decay_shape", [&c](const toml::node& n) { c.schedule.decay_shape = parse_decay_shape(as_string(n)); }},
      {"schedule.adamw.kind",
       [&c](const toml::node& n) { c.adamw_schedule_changes.kind = parse_schedule_kind(as_string(n)); }},
      {"schedule.adamw.warmup_steps", maybe_integer(c.adamw_schedule_changes.warmup_steps)},
      {"schedule.adamw.min_ratio", maybe_number(c.adamw_schedule_changes.min_ratio)},
      {"schedule.adamw.decay_fraction", maybe_number(c.adamw_schedule_changes.decay_fraction)},
      {"schedule.adamw.decay_shape",
       [&c](const toml::node& n) { c.adamw_schedule_changes.decay_shape = parse_decay_shape(as_string(n)); }},
      {"schedule.momentum_start", number(c.momentum_start)},
      {"schedule.momentum_warmup_steps", integer(c.momentum_warmup_steps)},
      {"run.steps", integer(c.run.steps)},
      {"run.grad_accum", integer(c.run.grad_accum)},
      {"run.clip_grad_norm", number(c.run.clip_grad_norm)},
      {"run.seed", integer(c.run.seed)},
      {"run.device", text(c.run.device)},
      {"run.eval_every", integer(c.run.eval_every)},
      {"run.eval_tokens", integer(c.run.eval_tokens)},
      {"run.log_every", integer(c.run.log_every)},
      {"run.checkpoint_every", integer(c.run.checkpoint_every)},
      {"run.keep_checkpoints", integer(c.run.keep_checkpoints)},
      {"run.out_dir", text(c.run.out_dir)},
      {"run.on_nonfinite", one_of(c.run.on_nonfinite, {"stop", "skip"})},
      {"run.dtype", one_of(c.run.dtype, {"fp32", "bf16"})},
      {"run.peak_tflops", number(c.run.peak_tflops)},
      {"run.diagnostics_every", integer(c.run.diagnostics_every)},
      {"run.one_step_every", integer(c.run.one_step_every)},
      {"distributed.shard_muon", boolean(c.distributed.shard_muon)},
      {"distributed.bucket_mb", integer(c.distributed.bucket_mb)},
      {"distributed.overlap", boolean(c.distributed.overlap)},
      {"distributed.timeout_s", number(c.distributed.timeout_s)},
      {"run.one_step_group_sizes",
       [&c](const toml::node& n) {
         const toml::array* array = n.as_array();
         if (array == nullptr) fail("expected an array of group sizes, got {}", type_name(n));
         std::vector<int64_t> sizes;
         for (const auto& item : *array) sizes.push_back(as_integer(item));
         c.run.one_step_group_sizes = sizes;
       }},
  };
}

const std::vector<std::string> kSections = {"model", "data", "optimizer", "schedule", "run", "distributed"};

// Adds `table`'s values under `prefix`, descending into sub-tables, so that
// `mla.kv_latent = 16` and a [model.mla] table both give "model.mla.kv_latent".
void flatten(const toml::table& table, const std::string& prefix, const std::string& source,
             std::vector<Assignment>& assignments) {
  for (auto&& [key, value] : table) {
    std::string name = fmt::format("{}.{}", prefix, key.str());
    if (const toml::table* inner = value.as_table()) {
      flatten(*inner, name, source, assignments);
    } else {
      assignments.push_back({name, toml::node_view<const toml::node>(value),
                             fmt::format("{}:{}", source, value.source().begin.line)});
    }
  }
}

// The file's assignments, each with its line.
std::vector<Assignment> file_assignments(const toml::table& table, const std::string& source) {
  std::vector<Assignment> assignments;
  for (auto&& [section, node] : table) {
    std::string where = fmt::format("{}:{}", source, node.source().begin.line);
    const toml::table* body = node.as_table();
    bool known = std::find(kSections.begin(), kSections.end(), std::string(section.str())) != kSections.end();
    if (body == nullptr || !known) {
      fail("{}: unknown section '{}': expected [{}]", where, section.str(), fmt::join(kSections, "], ["));
    }
    flatten(*body, std::string(section.str()), source, assignments);
  }
  return assignments;
}

// Keeps parsed override values alive while their views are used.
struct ParsedOverride {
  toml::table table;
  std::string key;
  std::string where;
};

ParsedOverride parse_override(const std::string& assignment) {
  std::string where = fmt::format("--set {}", assignment);
  size_t equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) fail("{}: expected section.key=value", where);
  std::string key = assignment.substr(0, equals), value = assignment.substr(equals + 1);
  if (key.find('.') == std::string::npos) fail("{}: expected section.key=value, e.g. run.steps=100", where);
  ParsedOverride parsed{{}, key, where};
  try {
    parsed.table = toml::parse("value = " + value);
  } catch (const toml::parse_error&) {
    parsed.table.insert("value", value);  // a bare word or path: a string
  }
  return parsed;
}

void apply(TrainConfig& config, std::map<std::string, Reader>& settings, const std::string& key,
           const toml::node& value, const std::string& where) {
  try {
    if (key.rfind("model.", 0) == 0) {
      std::string field = key.substr(6);
      if (field == "preset") {
        config.model_preset = as_string(value);
        config.model = models::model_preset(config.model_preset);
      } else {
        models::set_config_field(config.model, field, model_field_text(value));
      }
      return;
    }
    auto it = settings.find(key);
    if (it == settings.end()) fail("unknown key");
    it->second(value);
  } catch (const Error& error) {
    std::string message = error.what();
    if (message == "unknown key") {
      std::string section = key.substr(0, key.find('.'));
      std::vector<std::string> known;
      for (const auto& [name, reader] : settings) {
        if (name.rfind(section + ".", 0) == 0) known.push_back(name.substr(section.size() + 1));
      }
      if (known.empty()) fail("{}: unknown key '{}': no section [{}]; expected [{}]", where, key, section, fmt::join(kSections, "], ["));
      fail("{}: unknown key '{}': [{}] has {}", where, key, section, fmt::join(known, ", "));
    }
    fail("{}: '{}': {}", where, key, message);
  }
}

std::optional<c10::Device> parse_device(const std::string& text) {
  try {
    return c10::Device(text);
  } catch (const c10::Error&) {
    return std::nullopt;
  }
}

void check_config(const TrainConfig& config, const std::string& source) {
  if (config.data.train.empty()) {
    fail("{}: missing data: set [data] train to the training shards (a file, folder or glob, e.g. "
         "\"data/shards/corpus_train_*.bin\" from muonlab data prepare)",
         source);
  }
  auto positive = [&](const char* key, int64_t value) {
    if (value < 1) fail("{}: '{}' = {} must be at least 1", source, key, value);
  };
  positive("data.batch_size", config.data.batch_size);
  positive("data.seq_len", config.data.seq_len);
  positive("run.steps", config.run.steps);
  positive("run.grad_accum", config.run.grad_accum);
  positive("run.log_every", config.run.log_every);
  positive("run.keep_checkpoints", config.run.keep_checkpoints);
  positive("distributed.bucket_mb", config.distributed.bucket_mb);
  if (!(config.distributed.timeout_s > 0)) {
    fail("{}: 'distributed.timeout_s' = {}: expected seconds > 0", source, config.distributed.timeout_s);
  }
  if (!parse_device(config.run.device)) {
    fail("{}: 'run.device' = \"{}\": expected \"cpu\", \"cuda\" or \"cuda:N\"", source, config.run.device);
  }
  if (config.run.dtype == "bf16" && !parse_device(config.run.device)->is_cuda()) {
    fail("{}: 'run.dtype' = \"bf16\" needs a CUDA device (run.device = \"cuda\"); CPU runs train in fp32",
         source);
  }
  if (config.data.seq_len > config.model.block_size) {
    fail("{}: 'data.seq_len' = {} exceeds the model's block_size = {}", source, config.data.seq_len,
         config.model.block_size);
  }
  if (config.optimizer.ns_steps < 0) {
    fail("{}: 'optimizer.ns_steps' = {}: expected 0 (the variant's default) or more", source, config.optimizer.ns_steps);
  }
  if (config.optimizer.group_size < 0) {
    fail("{}: 'optimizer.group_size' = {}: expected heads per group >= 1, or 0 for whole matrices", source,
         config.optimizer.group_size);
  }
  for (const int64_t g : config.run.one_step_group_sizes) {
    if (g < 1 || config.model.n_head % g != 0) {
      fail("{}: 'run.one_step_group_sizes' holds {}: expected group sizes that divide the model's n_head = {}", source,
           g, config.model.n_head);
    }
  }
  if (config.optimizer.group_size > 0 && config.optimizer.group_size > config.model.n_head) {
    fail("{}: 'optimizer.group_size' = {} exceeds the model's n_head = {}", source, config.optimizer.group_size,
         config.model.n_head);
  }
  try {
    check_schedule(config.schedule, config.run.steps);
  } catch (const Error& error) {
    fail("{}: {}", source, error.what());
  }
  try {
    check_schedule(adamw_part_schedule(config), config.run.steps);
  } catch (const Error& error) {
    fail("{}: [schedule.adamw]: {}", source, error.what());
  }
}


// A TOML basic string: quotes and backslashes escaped.
std::string toml_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string toml_value(const std::string& text) {
  // Model fields print as key=value text; numbers and booleans stay bare.
  toml::table probe;
  try {
    probe = toml::parse("v = " + text);
    if (!probe["v"].is_string() && !probe["v"].is_table()) return text;
  } catch (const toml::parse_error&) {
  }
  return toml_string(text);
}

// [schedule.adamw] with only the keys that were set, so the resolved config
// keeps following [schedule] where the file did.
std::string format_schedule_changes(const ScheduleChanges& changes, const std::string& table) {
  if (changes.empty()) return "";
  std::string out = fmt::format("\n[{}]\n", table);
  if (changes.kind) out += fmt::format("kind = {}\n", toml_string(schedule_kind_name(*changes.kind)));
  if (changes.warmup_steps) out += fmt::format("warmup_steps = {}\n", *changes.warmup_steps);
  if (changes.min_ratio) out += fmt::format("min_ratio = {:.17g}\n", *changes.min_ratio);
  if (changes.decay_fraction) out += fmt::format("decay_fraction = {:.17g}\n", *changes.decay_fraction);
  if (changes.decay_shape) out += fmt::format("decay_shape = {}\n", toml_string(decay_shape_name(*changes.decay_shape)));
  return out;
}

}  // namespace

bool is_muon_variant(const std::string& optimizer_name) { return optimizer_name != "adamw"; }

ScheduleConfig ScheduleChanges::applied_to(ScheduleConfig base) const {
  if (kind) base.kind = *kind;
  if (warmup_steps) base.warmup_steps = *warmup_steps;
  if (min_ratio) base.min_ratio = *min_ratio;
  if (decay_fraction) base.decay_fraction = *decay_fraction;
  if (decay_shape) base.decay_shape = *decay_shape;
  return base;
}

ScheduleConfig adamw_part_schedule(const TrainConfig& config) {
  return config.adamw_schedule_changes.applied_to(config.schedule);
}

TrainConfig parse_train_config(const std::string& toml_text, const std::string& source,
                               const std::vector<std::string>& overrides) {
  toml::table table;
  try {
    table = toml::parse(toml_text, source);
  } catch (const toml::parse_error& error) {
    fail("{}:{}: not valid TOML: {}", source, error.source().begin.line, error.description());
  }
  std::vector<Assignment> assignments = file_assignments(table, source);
  std::vector<ParsedOverride> parsed;
  parsed.reserve(overrides.size());
  for (const auto& text : overrides) parsed.push_back(parse_override(text));
  for (const auto& override : parsed) {
    assignments.push_back({override.key, override.table["value"], override.where});
  }

  TrainConfig config;
  auto settings = readers(config);
  // The preset first: it replaces the whole model, which the other model
  // keys then adjust, wherever they appear.
  for (const auto& assignment : assignments) {
    if (assignment.key == "model.preset") apply(config, settings, assignment.key, *assignment.value.node(), assignment.where);
  }
  for (const auto& assignment : assignments) {
    if (assignment.key != "model.preset") apply(config, settings, assignment.key, *assignment.value.node(), assignment.where);
  }
  if (config.data.seq_len == 0) config.data.seq_len = config.model.block_size;
  if (config.optimizer.ns_steps == 0) config.optimizer.ns_steps = config.optimizer.name == "muon2" || config.optimizer.name == "muon2f" ? 3 : 5;
  check_config(config, source);
  return config;
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_train_config(read_whole_file(path), path, overrides);
}

std::string format_train_config(const TrainConfig& c) {
  std::ostringstream out;
  auto quoted = [](const std::string& text) { return toml_string(text); };
  auto number = [](double value) {
    std::string text = fmt::format("{}", value);
    return text.find_first_of(".eEn") == std::string::npos ? text + ".0" : text;
  };
  out << "[model]\npreset = " << quoted(c.model_preset) << "\n";
  std::istringstream fields(models::describe(c.model));
  for (std::string line; std::getline(fields, line);) {
    size_t equals = line.find('=');
    if (equals == std::string::npos) continue;
    out << line.substr(0, equals) << " = " << toml_value(line.substr(equals + 1)) << "\n";
  }
  const auto& d = c.data;
  out << fmt::format("\n[data]\ntrain = {}\nval = {}\ntokenizer = {}\nbatch_size = {}\nseq_len = {}\nshuffle = {}\nseed = {}\n",
                     quoted(d.train), quoted(d.val), quoted(d.tokenizer), d.batch_size, d.seq_len, d.shuffle, d.seed);
  const auto& o = c.optimizer;
  std::vector<std::string> grouped;
  for (const auto& name : o.grouped) grouped.push_back(quoted(name));
  out << fmt::format(
      "\n[optimizer]\nname = {}\nlr = {}\nmomentum = {}\nnesterov = {}\nns_steps = {}\nns_coefficients = {}\nns_dtype = {}\n"
      "scale_rule = {}\northogonalize = {}\nweight_decay = {}\nbeta2 = {}\nsecond_moment_eps = {}\n"
      "bias_correction = {}\ngroup_size = {}\ngrouping = {}\ngrouped = [{}]\nblock_scale = {}\n"
      "grouping_seed = {}\nadamw_lr = {}\nadamw_betas = [{}, {}]\nadamw_eps = {}\nadamw_weight_decay = {}\n",
      quoted(o.name), number(o.lr), number(o.momentum), o.nesterov, o.ns_steps, quoted(o.ns_coefficients), quoted(o.ns_dtype),
      quoted(o.scale_rule), o.orthogonalize, number(o.weight_decay), number(o.beta2), number(o.second_moment_eps),
      o.bias_correction, o.group_size, quoted(o.grouping), fmt::join(grouped, ", "), o.block_scale,
      o.grouping_seed, number(o.adamw_lr), number(o.adamw_betas[0]), number(o.adamw_betas[1]),
      number(o.adamw_eps), number(o.adamw_weight_decay));
  const auto& s = c.schedule;
  out << fmt::format(
      "\n[schedule]\nkind = {}\nwarmup_steps = {}\nmin_ratio = {}\ndecay_fraction = {}\ndecay_shape = {}\n"
      "momentum_start = {}\nmomentum_warmup_steps = {}\n",
      quoted(schedule_kind_name(s.kind)), s.warmup_steps, number(s.min_ratio), number(s.decay_fraction),
      quoted(decay_shape_name(s.decay_shape)), number(c.momentum_start), c.momentum_warmup_steps);
  out << format_schedule_changes(c.adamw_schedule_changes, "schedule.adamw");
  const auto& r = c.run;
  out << fmt::format(
      "\n[run]\nsteps = {}\ngrad_accum = {}\nclip_grad_norm = {}\nseed = {}\ndevice = {}\neval_every = {}\n"
      "eval_tokens = {}\nlog_every = {}\ncheckpoint_every = {}\nkeep_checkpoints = {}\nout_dir = {}\n"
      "on_nonfinite = {}\ndtype = {}\npeak_tflops = {}\ndiagnostics_every = {}\n"
      "one_step_every = {}\none_step_group_sizes = [{}]\n",
      r.steps, r.grad_accum, number(r.clip_grad_norm), r.seed, quoted(r.device), r.eval_every, r.eval_tokens,
      r.log_every, r.checkpoint_every, r.keep_checkpoints, quoted(r.out_dir), quoted(r.on_nonfinite),
      quoted(r.dtype), number(r.peak_tflops), r.diagnostics_every, r.one_step_every,
      fmt::join(r.one_step_group_sizes, ", "));
  out << fmt::format("\n[distributed]\nshard_muon = {}\noverlap = {}\nbucket_mb = {}\ntimeout_s = {}\n",
                     c.distributed.shard_muon, c.distributed.overlap, c.distributed.bucket_mb,
                     number(c.distributed.timeout_s));
  return out.str();
}

}  // namespace muonlab::training
