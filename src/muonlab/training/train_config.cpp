#include "muonlab/training/train_config.h"

#include <cmath>
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#define TOML_HEADER_ONLY 0
#include <toml++/toml.h>

#include <c10/core/Device.h>
#include <c10/util/Exception.h>

#include "muonlab/core/errors.h"
#include "muonlab/core/nearest_name.h"
#include "muonlab/core/native_bf16.h"
#include "muonlab/core/dtype_name.h"
#include "muonlab/core/read_file.h"
#include "muonlab/core/enum_names.h"
#include "muonlab/optimizers/head_groups.h"
#include "muonlab/optimizers/muon.h"
#include "muonlab/optimizers/newton_schulz.h"
#include "muonlab/training/config_key_hint.h"
#include "muonlab/training/train_optimizer.h"

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
  const double value = node.as_floating_point()->get();
  // inf and nan are valid TOML, never a valid setting: an infinite lr would
  // only surface as NaN losses far from its cause.
  if (!std::isfinite(value)) fail("expected a finite number, got {}", value);
  return value;
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
  fail("'{}' is not one of {}{}", value, fmt::join(allowed, ", "), did_you_mean(value, allowed));
}

// A model field's value in set_config_field's text syntax.
std::string model_field_text(const toml::node& node) {
  if (node.is_string()) return node.as_string()->get();
  if (node.is_integer()) return std::to_string(node.as_integer()->get());
  if (node.is_floating_point()) return fmt::format("{}", node.as_floating_point()->get());
  if (node.is_boolean()) return node.as_boolean()->get() ? "true" : "false";
  fail("expected a string, number or boolean, got {}", type_name(node));
}

// ---- the schema ------------------------------------------------------------
//
// One row per key outside [model] (whose keys are the model config's own
// fields, models::set_config_field): how to read it from TOML, how to write
// it back, and what it means. Parsing, `--set`, format_train_config (the
// resolved config.toml) and format_config_reference (docs/config.md) all
// read this table, so a key is declared once.

struct Field {
  std::string key;       // "section.key"
  std::string accepted;  // for the reference: "integer", "one of: a, b", ...
  std::string help;
  std::function<void(TrainConfig&, const toml::node&)> read;
  // The value as TOML text; nullopt leaves the key out (an unset
  // [schedule.adamw] change, which keeps following [schedule]).
  std::function<std::optional<std::string>(const TrainConfig&)> write;
};

// A TOML basic string: quotes and backslashes escaped.
std::string toml_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A float that reads back as a float (3 -> 3.0), exactly.
std::string toml_float(double value) {
  std::string text = fmt::format("{}", value);
  return text.find_first_of(".eEn") == std::string::npos ? text + ".0" : text;
}

std::string toml_strings(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  for (const auto& item : items) quoted.push_back(toml_string(item));
  return fmt::format("[{}]", fmt::join(quoted, ", "));
}

std::string one_of_text(const std::vector<std::string>& names) { return fmt::format("one of: {}", fmt::join(names, ", ")); }

// `at(config)` is the member a field reads and writes: a generic lambda,
// so the same accessor serves the const writer and the mutable reader.
template <typename At>
Field integer_field(std::string key, At at, std::string help) {
  return {std::move(key), "integer", std::move(help), [at](TrainConfig& c, const toml::node& n) { at(c) = as_integer(n); },
          [at](const TrainConfig& c) -> std::optional<std::string> { return std::to_string(at(c)); }};
}

template <typename At>
Field number_field(std::string key, At at, std::string help) {
  return {std::move(key), "number", std::move(help), [at](TrainConfig& c, const toml::node& n) { at(c) = as_number(n); },
          [at](const TrainConfig& c) -> std::optional<std::string> { return toml_float(at(c)); }};
}

template <typename At>
Field boolean_field(std::string key, At at, std::string help) {
  return {std::move(key), "true or false", std::move(help),
          [at](TrainConfig& c, const toml::node& n) { at(c) = as_boolean(n); },
          [at](const TrainConfig& c) -> std::optional<std::string> { return at(c) ? "true" : "false"; }};
}

template <typename At>
Field string_field(std::string key, At at, std::string help) {
  return {std::move(key), "string", std::move(help), [at](TrainConfig& c, const toml::node& n) { at(c) = as_string(n); },
          [at](const TrainConfig& c) -> std::optional<std::string> { return toml_string(at(c)); }};
}

// A string field whose values are the names of an enum's table.
template <typename At>
Field choice_field(std::string key, At at, std::vector<std::string> names, std::string help) {
  return {std::move(key), one_of_text(names), std::move(help),
          [at, names](TrainConfig& c, const toml::node& n) { at(c) = choice(n, names); },
          [at](const TrainConfig& c) -> std::optional<std::string> { return toml_string(at(c)); }};
}

// A field holding an enum value itself: read by the enum's parser (whose
// errors name the accepted values), written and listed through its table.
template <typename At, typename Enum>
Field enum_field(std::string key, At at, const EnumNames<Enum>& names, Enum (*parse)(const std::string&),
                 std::string help) {
  return {std::move(key), one_of_text(enum_name_list(names)), std::move(help),
          [at, parse](TrainConfig& c, const toml::node& n) { at(c) = parse(as_string(n)); },
          [at, &names](const TrainConfig& c) -> std::optional<std::string> {
            return toml_string(enum_name(names, at(c)));
          }};
}

// A [schedule.adamw] change (a std::optional member): `read` parses a
// value, `write` prints one; left out of the resolved config while unset, so
// that it keeps following [schedule].
template <typename At, typename Read, typename Write>
Field change_field(std::string key, std::string accepted, At at, Read read, Write write, std::string help) {
  return {std::move(key), std::move(accepted), std::move(help),
          [at, read](TrainConfig& c, const toml::node& n) { at(c) = read(n); },
          [at, write](const TrainConfig& c) -> std::optional<std::string> {
            if (!at(c)) return std::nullopt;
            return write(*at(c));
          }};
}

// The member `path` of a TrainConfig, for the field helpers.
#define MUONLAB_AT(path) [](auto& c) -> auto& { return c.path; }

const std::vector<Field>& fields() {
  static const std::vector<Field> table = [] {
    std::vector<Field> f;
    // [data]
    f.push_back(string_field("data.train", MUONLAB_AT(data.train),
                             "training shards: a file, folder or glob (required)"));
    f.push_back(string_field("data.val", MUONLAB_AT(data.val), "validation shards; empty: no evaluation"));
    f.push_back(string_field("data.tokenizer", MUONLAB_AT(data.tokenizer),
                             "gpt2, byte, a folder with encoder.json and vocab.bpe, or a Hugging Face tokenizer.json"));
    f.push_back(integer_field("data.batch_size", MUONLAB_AT(data.batch_size),
                              "sequences per micro-step on each rank"));
    f.push_back(integer_field("data.seq_len", MUONLAB_AT(data.seq_len), "tokens per sequence; 0: the model's block_size"));
    f.push_back(boolean_field("data.shuffle", MUONLAB_AT(data.shuffle), "shuffle the training windows every epoch"));
    f.push_back(integer_field("data.seed", MUONLAB_AT(data.seed), "seed of the shuffle"));
    // [optimizer]
    f.push_back(choice_field("optimizer.name", MUONLAB_AT(optimizer.name), optimizer_names(),
                             "a Muon variant (with AdamW for embeddings, head, norms, biases), or AdamW alone"));
    f.push_back(number_field("optimizer.lr", MUONLAB_AT(optimizer.lr), "Muon's learning rate, or AdamW's when name = adamw"));
    f.push_back(number_field("optimizer.momentum", MUONLAB_AT(optimizer.momentum), "Muon's momentum mu"));
    f.push_back(boolean_field("optimizer.nesterov", MUONLAB_AT(optimizer.nesterov), "Nesterov momentum"));
    f.push_back(integer_field("optimizer.ns_steps", MUONLAB_AT(optimizer.ns_steps),
                              "Newton-Schulz steps K; 0: the variant's default (5 for Muon, 3 for Muon² and Muon²-F)"));
    f.push_back(choice_field("optimizer.ns_coefficients", MUONLAB_AT(optimizer.ns_coefficients),
                             optim::ns_preset_names(), "Newton-Schulz coefficient preset"));
    f.push_back(choice_field("optimizer.ns_dtype", MUONLAB_AT(optimizer.ns_dtype),
                             enum_name_list(optim::ns_dtype_names()),
                             "dtype of the Newton-Schulz matmuls; auto: bf16 where the device has bf16 instructions (CUDA, "
                             "AVX512-BF16, AMX), else fp32"));
    f.push_back(choice_field("optimizer.ns_method", MUONLAB_AT(optimizer.ns_method),
                             enum_name_list(optim::ns_method_names()),
                             "how the Newton-Schulz steps are computed; gram: on the Gram matrix X X^T, fewer FLOPs for "
                             "matrices well wider than tall (or the reverse), the same result up to rounding"));
    f.push_back(integer_field("optimizer.gram_restart", MUONLAB_AT(optimizer.gram_restart),
                              "with ns_method = gram: steps between recomputations of the Gram matrix from X"));
    f.push_back(boolean_field("optimizer.cuda_graph", MUONLAB_AT(optimizer.cuda_graph),
                              "CUDA: replay Muon's work before the learning rate (momentum, Newton-Schulz) from a "
                              "CUDA graph, one launch instead of hundreds; the same arithmetic. Needs muonlab built "
                              "against PyTorch's CUDA LibTorch; no effect on the CPU"));
    f.push_back(choice_field("optimizer.scale_rule", MUONLAB_AT(optimizer.scale_rule),
                             enum_name_list(optim::scale_rule_names()), "lr scale of each matrix from its shape"));
    f.push_back(boolean_field("optimizer.orthogonalize", MUONLAB_AT(optimizer.orthogonalize),
                              "false: the normalized-momentum ablation (no Newton-Schulz)"));
    f.push_back(number_field("optimizer.weight_decay", MUONLAB_AT(optimizer.weight_decay),
                             "Muon's decoupled weight decay"));
    f.push_back(number_field("optimizer.beta2", MUONLAB_AT(optimizer.beta2), "Muon² / Muon²-F second-moment decay"));
    f.push_back(number_field("optimizer.second_moment_eps", MUONLAB_AT(optimizer.second_moment_eps),
                             "Muon² / Muon²-F epsilon"));
    f.push_back(boolean_field("optimizer.bias_correction", MUONLAB_AT(optimizer.bias_correction),
                              "Muon² / Muon²-F bias correction of the second moment"));
    f.push_back(number_field("optimizer.neuron_beta2", MUONLAB_AT(optimizer.neuron_beta2),
                             "NorMuon: decay of the per-neuron second moment of the orthogonalized update"));
    f.push_back(number_field("optimizer.neuron_eps", MUONLAB_AT(optimizer.neuron_eps), "NorMuon epsilon"));
    f.push_back(number_field("optimizer.qk_clip_tau", MUONLAB_AT(optimizer.qk_clip_tau),
                             "QK-clip (MuonClip): after each step, rescale the query/key weights of heads whose "
                             "largest attention logit exceeded this; 0: off"));
    f.push_back(integer_field("optimizer.group_size", MUONLAB_AT(optimizer.group_size),
                              "Group Muon: heads per block; 0: whole matrices"));
    f.push_back(choice_field("optimizer.grouping", MUONLAB_AT(optimizer.grouping),
                             enum_name_list(optim::grouping_rule_names()), "Group Muon: which heads share a block"));
    f.push_back({"optimizer.grouped", "array of: q, k, v, o, mla_up", "Group Muon: the projections cut into blocks",
                 [](TrainConfig& c, const toml::node& n) {
                   const toml::array* array = n.as_array();
                   if (array == nullptr) fail("expected an array of projection names, got {}", type_name(n));
                   std::vector<std::string> names;
                   for (const auto& item : *array) names.push_back(as_string(item));
                   optim::parse_grouped_projections(names);  // names the unknown entry
                   c.optimizer.grouped = names;
                 },
                 [](const TrainConfig& c) -> std::optional<std::string> { return toml_strings(c.optimizer.grouped); }});
    f.push_back(boolean_field("optimizer.block_scale", MUONLAB_AT(optimizer.block_scale),
                              "Group Muon: lr scale from each block's shape instead of the whole matrix's"));
    f.push_back(integer_field("optimizer.grouping_seed", MUONLAB_AT(optimizer.grouping_seed),
                              "Group Muon: seed of random grouping"));
    f.push_back(number_field("optimizer.adamw_lr", MUONLAB_AT(optimizer.adamw_lr),
                             "the hybrid's AdamW part (embeddings, head, norms, biases)"));
    f.push_back({"optimizer.adamw_betas", "array of two numbers", "AdamW's (beta1, beta2)",
                 [](TrainConfig& c, const toml::node& n) {
                   const toml::array* array = n.as_array();
                   if (array == nullptr || array->size() != 2) fail("expected an array of two numbers, got {}", type_name(n));
                   c.optimizer.adamw_betas = {as_number(*array->get(0)), as_number(*array->get(1))};
                 },
                 [](const TrainConfig& c) -> std::optional<std::string> {
                   return fmt::format("[{}, {}]", toml_float(c.optimizer.adamw_betas[0]),
                                      toml_float(c.optimizer.adamw_betas[1]));
                 }});
    f.push_back(number_field("optimizer.adamw_eps", MUONLAB_AT(optimizer.adamw_eps), "AdamW's epsilon"));
    f.push_back(number_field("optimizer.adamw_weight_decay", MUONLAB_AT(optimizer.adamw_weight_decay),
                             "AdamW's decoupled weight decay"));
    // [schedule]
    f.push_back(enum_field("schedule.kind", MUONLAB_AT(schedule.kind), schedule_kind_names(), parse_schedule_kind, "lr schedule"));
    f.push_back(integer_field("schedule.warmup_steps", MUONLAB_AT(schedule.warmup_steps), "linear warmup steps"));
    f.push_back(number_field("schedule.min_ratio", MUONLAB_AT(schedule.min_ratio), "final lr / peak lr"));
    f.push_back(number_field("schedule.decay_fraction", MUONLAB_AT(schedule.decay_fraction),
                             "wsd: the fraction of steps spent decaying"));
    f.push_back(enum_field("schedule.decay_shape", MUONLAB_AT(schedule.decay_shape), decay_shape_names(),
                           parse_decay_shape, "wsd: shape of the decay"));
    f.push_back(number_field("schedule.momentum_start", MUONLAB_AT(momentum_start),
                             "Muon's momentum at step 0, ramped to optimizer.momentum; < 0: no ramp"));
    f.push_back(integer_field("schedule.momentum_warmup_steps", MUONLAB_AT(momentum_warmup_steps),
                              "steps of the momentum ramp"));
    // [schedule.adamw]: the hybrid's AdamW part follows [schedule] with these changed.
    const std::string adamw = " of the hybrid's AdamW part; unset: [schedule]'s";
    auto quoted = [](auto name) { return [name](auto value) { return toml_string(name(value)); }; };
    auto exact = [](double value) { return fmt::format("{:.17g}", value); };
    auto integer_text = [](int64_t value) { return std::to_string(value); };
    f.push_back(change_field("schedule.adamw.kind", one_of_text(enum_name_list(schedule_kind_names())),
                             MUONLAB_AT(adamw_schedule_changes.kind),
                             [](const toml::node& n) { return parse_schedule_kind(as_string(n)); },
                             quoted(schedule_kind_name), "lr schedule" + adamw));
    f.push_back(change_field("schedule.adamw.warmup_steps", "integer", MUONLAB_AT(adamw_schedule_changes.warmup_steps),
                             as_integer, integer_text, "warmup steps" + adamw));
    f.push_back(change_field("schedule.adamw.min_ratio", "number", MUONLAB_AT(adamw_schedule_changes.min_ratio),
                             as_number, exact, "final lr / peak lr" + adamw));
    f.push_back(change_field("schedule.adamw.decay_fraction", "number",
                             MUONLAB_AT(adamw_schedule_changes.decay_fraction), as_number, exact,
                             "wsd decay fraction" + adamw));
    f.push_back(change_field("schedule.adamw.decay_shape", one_of_text(enum_name_list(decay_shape_names())),
                             MUONLAB_AT(adamw_schedule_changes.decay_shape),
                             [](const toml::node& n) { return parse_decay_shape(as_string(n)); },
                             quoted(decay_shape_name), "wsd decay shape" + adamw));
    // [run]
    f.push_back(integer_field("run.steps", MUONLAB_AT(run.steps), "optimizer steps"));
    f.push_back(integer_field("run.grad_accum", MUONLAB_AT(run.grad_accum), "micro-steps per optimizer step"));
    f.push_back(number_field("run.clip_grad_norm", MUONLAB_AT(run.clip_grad_norm), "global gradient norm clip; 0: none"));
    f.push_back(integer_field("run.seed", MUONLAB_AT(run.seed), "seed of the initialization"));
    f.push_back(string_field("run.device", MUONLAB_AT(run.device), "cpu, cuda or cuda:N"));
    f.push_back(integer_field("run.eval_every", MUONLAB_AT(run.eval_every), "steps between evaluations; 0: only at the end"));
    f.push_back(integer_field("run.eval_tokens", MUONLAB_AT(run.eval_tokens),
                              "validation tokens per evaluation, rounded up to whole batches (at most the split)"));
    f.push_back(string_field("run.hellaswag", MUONLAB_AT(run.hellaswag),
                             "HellaSwag-format JSON Lines (ctx, endings, label) or Parquet, scored at each evaluation "
                             "(hellaswag_acc_norm, hellaswag_acc); empty: none"));
    f.push_back(integer_field("run.hellaswag_items", MUONLAB_AT(run.hellaswag_items),
                              "score only the first N items of run.hellaswag; 0: all"));
    f.push_back(string_field("run.init_from", MUONLAB_AT(run.init_from),
                             "start from these weights instead of a random init: a Hugging Face GPT-2 or LLaMA "
                             "folder, a muonlab run folder or weights file, or a model file; [model] must describe "
                             "the same model (e.g. preset gpt2-small for Hugging Face's gpt2); empty: random init"));
    f.push_back(integer_field("run.log_every", MUONLAB_AT(run.log_every), "steps between progress lines"));
    f.push_back(integer_field("run.checkpoint_every", MUONLAB_AT(run.checkpoint_every),
                              "steps between checkpoints; 0: only at the end and on a signal"));
    f.push_back(integer_field("run.keep_checkpoints", MUONLAB_AT(run.keep_checkpoints), "newest checkpoints kept"));
    f.push_back(string_field("run.out_dir", MUONLAB_AT(run.out_dir), "the run folder"));
    f.push_back(enum_field("run.on_nonfinite", MUONLAB_AT(run.on_nonfinite), optim::nonfinite_policy_names(),
                           optim::parse_nonfinite_policy,
                           "a NaN or infinite loss or gradient: stop the run, or skip the step"));
    f.push_back(integer_field("run.max_skipped_steps", MUONLAB_AT(run.max_skipped_steps),
                              "with on_nonfinite = \"skip\": fail once more steps were skipped (-1: no limit)"));
    f.push_back(boolean_field("run.tensorboard", MUONLAB_AT(run.tensorboard),
                              "also write the metrics as TensorBoard event files in out_dir/tensorboard"));
    f.push_back(choice_field("run.dtype", MUONLAB_AT(run.dtype), {"auto", "fp32", "bf16"},
                             "bf16: autocast (CUDA or CPU) with fp32 weights and state; auto: bf16 where the "
                             "device has bf16 instructions (CUDA, AVX512-BF16, AMX), else fp32"));
    f.push_back(number_field("run.peak_tflops", MUONLAB_AT(run.peak_tflops),
                             "the device's peak for MFU; 0: the table of known GPUs"));
    f.push_back(integer_field("run.diagnostics_every", MUONLAB_AT(run.diagnostics_every),
                              "steps between update-RMS diagnostics; 0: never"));
    f.push_back(integer_field("run.one_step_every", MUONLAB_AT(run.one_step_every),
                              "steps between Group Muon's one-step gain and norm-cost terms; 0: never"));
    f.push_back({"run.one_step_group_sizes", "array of integers",
                 "group sizes the one-step terms measure; empty: optimizer.group_size, or 1 for Muon",
                 [](TrainConfig& c, const toml::node& n) {
                   const toml::array* array = n.as_array();
                   if (array == nullptr) fail("expected an array of group sizes, got {}", type_name(n));
                   std::vector<int64_t> sizes;
                   for (const auto& item : *array) sizes.push_back(as_integer(item));
                   c.run.one_step_group_sizes = sizes;
                 },
                 [](const TrainConfig& c) -> std::optional<std::string> {
                   return fmt::format("[{}]", fmt::join(c.run.one_step_group_sizes, ", "));
                 }});
    // [distributed]
    f.push_back(boolean_field("distributed.shard_muon", MUONLAB_AT(distributed.shard_muon),
                              "each rank orthogonalizes its share of Muon's matrices (ZeRO-1); false: all of them"));
    f.push_back(boolean_field("distributed.shard_adamw", MUONLAB_AT(distributed.shard_adamw),
                              "each rank steps its share of AdamW's parameters and keeps only their moments "
                              "(ZeRO-1); false: every rank steps all of them"));
    f.push_back(boolean_field("distributed.overlap", MUONLAB_AT(distributed.overlap),
                              "all-reduce gradient buckets while backward still runs"));
    f.push_back(integer_field("distributed.bucket_mb", MUONLAB_AT(distributed.bucket_mb), "all-reduce bucket size"));
    f.push_back(number_field("distributed.timeout_s", MUONLAB_AT(distributed.timeout_s),
                             "a collective that waits longer fails, naming the ranks that stopped answering"));
    return f;
  }();
  return table;
}

#undef MUONLAB_AT

const Field* find_field(const std::string& key) {
  for (const auto& field : fields()) {
    if (field.key == key) return &field;
  }
  return nullptr;
}

const std::vector<std::string> kSections = {"model", "data", "optimizer", "schedule", "run", "distributed"};

}  // namespace

std::vector<std::string> config_keys() {
  std::vector<std::string> keys{"model.preset"};
  for (const std::string& field : models::config_field_names()) keys.push_back("model." + field);
  for (const auto& field : fields()) keys.push_back(field.key);
  return keys;
}

namespace {

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
    if (section.str() == "sweep" || section.str() == "axes" || section.str() == "variant") {
      fail("{}: [{}]: a sweep spec, not a train config: run it with `muonlab sweep {}`", where, section.str(), source);
    }
    if (body == nullptr || !known) {
      const std::string near = nearest_name(std::string(section.str()), kSections);
      fail("{}: unknown section '{}'{}: expected [{}]", where, section.str(),
           near.empty() ? "" : fmt::format(" (did you mean [{}]?)", near), fmt::join(kSections, "], ["));
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

// `text` without the spaces and tabs around it.
std::string trimmed(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

ParsedOverride parse_override(const std::string& assignment) {
  std::string where = fmt::format("--set {}", assignment);
  size_t equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    // "--set run.steps 100" gives "run.steps" and "100" apart.
    const bool a_key = assignment.find('.') != std::string::npos && assignment.find(' ') == std::string::npos;
    fail("{}: expected section.key=value{}", where,
         a_key ? fmt::format(", one argument: --set {}=VALUE", assignment) : std::string());
  }
  // "run.steps = 100", as TOML writes it, is run.steps=100.
  std::string key = trimmed(assignment.substr(0, equals)), value = trimmed(assignment.substr(equals + 1));
  if (key.find('.') == std::string::npos) fail("{}: expected section.key=value, e.g. run.steps=100", where);
  ParsedOverride parsed{{}, key, where};
  try {
    parsed.table = toml::parse("value = " + value);
  } catch (const toml::parse_error& error) {
    // A value that starts like a TOML string, array or table but does not
    // parse is a typo (an unclosed quote, a missing bracket), not a path.
    if (!value.empty() && std::string("\"'[{").find(value.front()) != std::string::npos) {
      fail("{}: '{}' is not a valid TOML value: {}", where, value, error.description());
    }
    parsed.table.insert("value", value);  // a bare word or path: a string
  }
  return parsed;
}

void apply(TrainConfig& config, const std::string& key, const toml::node& value, const std::string& where) {
  try {
    if (key.rfind("model.", 0) == 0) {
      std::string field = key.substr(6);
      if (field == "preset") {
        config.model_preset = as_string(value);
        config.model = models::model_preset(config.model_preset);
      } else {
        if (!models::is_config_field(field)) fail("unknown key");
        models::set_config_field(config.model, field, model_field_text(value));
      }
      return;
    }
    const Field* field = find_field(key);
    if (field == nullptr) fail("unknown key");
    field->read(config, value);
  } catch (const Error& error) {
    std::string message = error.what();
    if (message == "unknown key") {
      std::string section = key.substr(0, key.find('.'));
      const std::vector<std::string> keys = config_keys();
      std::vector<std::string> known;
      for (const std::string& each : keys) {
        if (each.rfind(section + ".", 0) == 0) known.push_back(each.substr(section.size() + 1));
      }
      const std::string hint = unknown_key_hint(key, keys);
      if (known.empty()) {
        fail("{}: unknown key '{}'{}: no section [{}]; expected [{}]", where, key, hint, section,
             fmt::join(kSections, "], ["));
      }
      fail("{}: unknown key '{}'{}: [{}] has {}", where, key, hint, section, fmt::join(known, ", "));
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

// The AdamW part's options (all parameters' under optimizer.name = "adamw"),
// each named by the key that sets it, before AdamW itself would refuse them
// without one.
void check_adamw_part(const OptimizerSettings& settings, const std::string& source) {
  const bool hybrid = is_muon_variant(settings.name);
  const char* lr_key = hybrid ? "optimizer.adamw_lr" : "optimizer.lr";
  const double lr = hybrid ? settings.adamw_lr : settings.lr;
  if (!(lr >= 0)) fail("{}: '{}' = {}: expected a learning rate >= 0", source, lr_key, lr);
  for (const double beta : settings.adamw_betas) {
    if (!(beta >= 0 && beta < 1)) {
      fail("{}: 'optimizer.adamw_betas' = [{}]: expected two numbers in [0, 1)", source,
           fmt::join(settings.adamw_betas, ", "));
    }
  }
  if (!(settings.adamw_eps > 0)) fail("{}: 'optimizer.adamw_eps' = {}: expected a number > 0", source, settings.adamw_eps);
  if (!(settings.adamw_weight_decay >= 0)) {
    fail("{}: 'optimizer.adamw_weight_decay' = {}: expected a number >= 0", source, settings.adamw_weight_decay);
  }
}

// Group Muon cuts each grouped segment of more than g heads into groups of g
// (optimizers/head_groups.h), so g must divide the head count of each: the
// query, output and MLA up-projection heads (n_head), and standard
// attention's key/value heads. A segment of at most g heads (GQA's few K/V
// heads, MLA's one rotary key) stays one block. Checked here, as the
// optimizer would check the weights, so that the error names the keys.
void check_head_groups(const TrainConfig& config, const std::string& source) {
  const int64_t g = config.optimizer.group_size;
  if (g <= 0 || !is_muon_variant(config.optimizer.name)) return;
  const models::ModelConfig& model = config.model;
  const optim::GroupedProjections grouped = optim::parse_grouped_projections(config.optimizer.grouped);
  const bool latent = model.attention == models::AttentionKind::kMla;
  auto check_divides = [&](const char* key, int64_t heads) {
    if (heads <= g || heads % g == 0) return;
    fail("{}: 'optimizer.group_size' = {} does not divide the model's {} = {}, whose heads Group Muon cuts into "
         "groups of {} (optimizer.grouped = [{}]); choose a divisor of {}",
         source, g, key, heads, g, fmt::join(config.optimizer.grouped, ", "), heads);
  };
  if (grouped.q || grouped.o || (latent && grouped.mla_up)) check_divides("model.n_head", model.n_head);
  if (!latent && (grouped.k || grouped.v)) {
    check_divides(model.n_kv_head > 0 ? "model.n_kv_head" : "model.n_head", model.kv_heads());
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
  if (config.run.max_skipped_steps < -1) {
    fail("{}: 'run.max_skipped_steps' = {}: expected -1 (no limit) or a count >= 0", source,
         config.run.max_skipped_steps);
  }
  if (!(config.distributed.timeout_s > 0)) {
    fail("{}: 'distributed.timeout_s' = {}: expected seconds > 0", source, config.distributed.timeout_s);
  }
  if (!parse_device(config.run.device)) {
    fail("{}: 'run.device' = \"{}\": expected \"cpu\", \"cuda\" or \"cuda:N\"", source, config.run.device);
  }
  if (config.data.seq_len > config.model.block_size) {
    fail("{}: 'data.seq_len' = {} exceeds the model's block_size = {}", source, config.data.seq_len,
         config.model.block_size);
  }
  if (config.optimizer.gram_restart < 1) {
    fail("{}: 'optimizer.gram_restart' = {}: expected steps between restarts >= 1", source,
         config.optimizer.gram_restart);
  }
  if (config.optimizer.ns_steps < 0) {
    fail("{}: 'optimizer.ns_steps' = {}: expected 0 (the variant's default) or more", source, config.optimizer.ns_steps);
  }
  if (config.optimizer.group_size < 0) {
    fail("{}: 'optimizer.group_size' = {}: expected heads per group >= 1, or 0 for whole matrices", source,
         config.optimizer.group_size);
  }
  // Counts and settings where 0 has a meaning of its own, and below 0 none.
  auto at_least_zero = [&](const char* key, double value, const char* zero_means) {
    if (!(value >= 0)) fail("{}: '{}' = {}: expected 0 ({}) or more", source, key, value, zero_means);
  };
  at_least_zero("run.eval_every", static_cast<double>(config.run.eval_every), "only at the end");
  at_least_zero("run.checkpoint_every", static_cast<double>(config.run.checkpoint_every),
                "only at the end and on a signal");
  at_least_zero("run.diagnostics_every", static_cast<double>(config.run.diagnostics_every), "never");
  at_least_zero("run.one_step_every", static_cast<double>(config.run.one_step_every), "never");
  at_least_zero("run.clip_grad_norm", config.run.clip_grad_norm, "no clipping");
  at_least_zero("run.peak_tflops", config.run.peak_tflops, "the table of known GPUs");
  at_least_zero("schedule.momentum_warmup_steps", static_cast<double>(config.momentum_warmup_steps), "no ramp");
  positive("run.eval_tokens", config.run.eval_tokens);
  if (config.momentum_start >= 1) {
    fail("{}: 'schedule.momentum_start' = {}: expected a momentum in [0, 1) to ramp from, or < 0 for no ramp", source,
         config.momentum_start);
  }
  check_adamw_part(config.optimizer, source);
  try {
    config.model.validate();
  } catch (const Error& error) {
    fail("{}: [model]: {}", source, error.what());
  }
  if (config.run.hellaswag_items < 0) {
    fail("{}: 'run.hellaswag_items' = {}: expected 0 (all) or a positive count", source, config.run.hellaswag_items);
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
  check_head_groups(config, source);
  if (!(config.optimizer.qk_clip_tau >= 0 && std::isfinite(config.optimizer.qk_clip_tau))) {
    fail("{}: 'optimizer.qk_clip_tau' = {}: expected 0 (off) or a finite logit bound > 0", source,
         config.optimizer.qk_clip_tau);
  }
  if (config.optimizer.qk_clip_tau > 0 && config.model.qk_norm) {
    fail("{}: 'optimizer.qk_clip_tau' = {} with 'model.qk_norm' = true: QK-norm fixes the query and key norms, so "
         "rescaling their weights cannot bound the logits; use one or the other",
         source, config.optimizer.qk_clip_tau);
  }
  if (is_muon_variant(config.optimizer.name)) {
    try {
      muon_options(config.optimizer).validate();
    } catch (const Error& error) {
      fail("{}: [optimizer]: {}", source, error.what());
    }
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

}  // namespace

std::vector<std::string> optimizer_names() {
  std::vector<std::string> names = enum_name_list(optim::muon_variant_names());
  names.emplace_back(optim::kNorMuonName);
  names.emplace_back("adamw");
  return names;
}

bool is_muon_variant(const std::string& optimizer_name) {
  return find_enum(optim::muon_variant_names(), optimizer_name).has_value() || uses_neuron_norm(optimizer_name);
}

bool uses_neuron_norm(const std::string& optimizer_name) { return optimizer_name == optim::kNorMuonName; }

torch::Dtype training_dtype(const std::string& run_dtype, const torch::Device& device) {
  if (run_dtype == "bf16" || (run_dtype == "auto" && has_native_bf16(device))) return torch::kBFloat16;
  return torch::kFloat32;
}

std::string describe_precision(const TrainConfig& config, const torch::Device& device) {
  const bool autocast = training_dtype(config.run.dtype, device) == torch::kBFloat16;
  std::string text = autocast ? "forward in bf16 (autocast), fp32 weights and optimizer state" : "fp32 throughout";
  if (is_muon_variant(config.optimizer.name)) {
    const auto ns = optim::resolve_ns_dtype(optim::parse_ns_dtype(config.optimizer.ns_dtype), device);
    text += fmt::format(", Newton-Schulz in {}", short_dtype_name(ns));
  }
  const bool chosen = config.run.dtype == "auto" || config.optimizer.ns_dtype == "auto";
  if (chosen) text += fmt::format(" (auto: {})", native_bf16_reason(device));
  return text;
}

optim::SecondMomentKind muon_variant(const std::string& optimizer_name) {
  if (uses_neuron_norm(optimizer_name)) return optim::SecondMomentKind::kNone;
  if (auto variant = find_enum(optim::muon_variant_names(), optimizer_name)) return *variant;
  auto accepted = enum_name_list(optim::muon_variant_names());
  accepted.emplace_back(optim::kNorMuonName);
  fail("optimizer '{}' is not a Muon variant{}: expected {}", optimizer_name, did_you_mean(optimizer_name, accepted),
       alternatives(accepted));
}

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

// A check that failed on a value given by --set names the --set: the file
// the message starts with does not hold that value. A key counts as named
// as 'section.key', as "key = " or as 'key' = (the model's checks, which
// name nested keys as 'moe.top_k').
std::string with_override_origins(const std::string& message, const std::vector<ParsedOverride>& parsed,
                                  const std::vector<std::string>& overrides) {
  std::vector<std::string> origins;
  for (size_t i = 0; i < parsed.size(); ++i) {
    const std::string& key = parsed[i].key;
    const std::string leaf = key.substr(key.rfind('.') + 1);
    if (message.find("'" + key + "'") != std::string::npos || message.find(" " + leaf + " = ") != std::string::npos ||
        message.find("'" + key.substr(key.find('.') + 1) + "' = ") != std::string::npos) {
      origins.push_back("--set " + overrides[i]);
    }
  }
  return origins.empty() ? message : fmt::format("{} (from {})", message, fmt::join(origins, ", "));
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
  // The preset first: it replaces the whole model, which the other model
  // keys then adjust, wherever they appear.
  for (const auto& assignment : assignments) {
    if (assignment.key == "model.preset") apply(config, assignment.key, *assignment.value.node(), assignment.where);
  }
  for (const auto& assignment : assignments) {
    if (assignment.key != "model.preset") apply(config, assignment.key, *assignment.value.node(), assignment.where);
  }
  if (config.data.seq_len == 0) config.data.seq_len = config.model.block_size;
  if (config.optimizer.ns_steps == 0) {
    config.optimizer.ns_steps = is_muon_variant(config.optimizer.name)
                                    ? optim::default_ns_steps(muon_variant(config.optimizer.name))
                                    : optim::default_ns_steps(optim::SecondMomentKind::kNone);
  }
  try {
    check_config(config, source);
  } catch (const Error& error) {
    throw Error(with_override_origins(error.what(), parsed, overrides));
  }
  return config;
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  // A folder opens as an empty stream on Linux, which would read as an
  // empty config and fail later for the wrong reason.
  if (std::filesystem::is_directory(path)) fail("config '{}' is a folder; expected a TOML file", path);
  return parse_train_config(read_whole_file(path), path, overrides);
}

std::string format_train_config(const TrainConfig& c) {
  std::string out = "[model]\npreset = " + toml_string(c.model_preset) + "\n";
  std::istringstream model_fields(models::describe(c.model));
  for (std::string line; std::getline(model_fields, line);) {
    size_t equals = line.find('=');
    if (equals == std::string::npos) continue;
    out += line.substr(0, equals) + " = " + toml_value(line.substr(equals + 1)) + "\n";
  }
  // The table's keys in its order, a [section] header before each new one.
  std::string section = "model";
  for (const auto& field : fields()) {
    const std::optional<std::string> value = field.write(c);
    if (!value) continue;
    const size_t dot = field.key.rfind('.');
    const std::string table = field.key.substr(0, dot);
    if (table != section) {
      out += fmt::format("\n[{}]\n", table);
      section = table;
    }
    out += fmt::format("{} = {}\n", field.key.substr(dot + 1), *value);
  }
  return out;
}

std::string format_config_reference() {
  std::string out =
      "| key | accepted | default | meaning |\n"
      "|---|---|---|---|\n"
      "| `model.preset` | a preset name (`muonlab model info`) | `\"tiny-gpt2\"` | the architecture; any other "
      "`model.<field>` (`n_layer`, `n_head`, `mla.kv_latent`, `moe.top_k`, ...) changes one of its fields |\n";
  const TrainConfig defaults;
  for (const auto& field : fields()) {
    const std::optional<std::string> value = field.write(defaults);
    out += fmt::format("| `{}` | {} | {} | {} |\n", field.key, field.accepted,
                       value ? fmt::format("`{}`", *value) : std::string("unset"), field.help);
  }
  return out;
}

}  // namespace muonlab::training
