#include "muonlab/training/config_key_hint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

#include <algorithm>
#include <map>
#include <optional>

#include "muonlab/core/nearest_name.h"
#include "muonlab/models/model_field_aliases.h"

namespace muonlab::training {

// nanoGPT's eval_iters and min_lr are not here: they count otherwise.
const std::map<std::string, KeyAlias>& trainer_key_aliases() {
  static const std::string kNanoGpt = "nanoGPT's";
  static const std::string kHf = "Hugging Face TrainingArguments'";
  static const std::map<std::string, KeyAlias> table{
      {"max_iters", {"run.steps", kNanoGpt}},
      {"max_steps", {"run.steps", kHf}},
      {"learning_rate", {"optimizer.lr", "nanoGPT's and Hugging Face TrainingArguments'"}},
      {"warmup_iters", {"schedule.warmup_steps", kNanoGpt}},
      {"grad_clip", {"run.clip_grad_norm", kNanoGpt}},
      {"max_grad_norm", {"run.clip_grad_norm", kHf}},
      {"eval_interval", {"run.eval_every", kNanoGpt}},
      {"eval_steps", {"run.eval_every", kHf}},
      {"log_interval", {"run.log_every", kNanoGpt}},
      {"logging_steps", {"run.log_every", kHf}},
      {"gradient_accumulation_steps", {"run.grad_accum", "nanoGPT's and Hugging Face TrainingArguments'"}},
      {"save_steps", {"run.checkpoint_every", kHf}},
      {"save_total_limit", {"run.keep_checkpoints", kHf}},
      {"output_dir", {"run.out_dir", kHf}},
      {"lr_scheduler_type", {"schedule.kind", kHf}},
      {"per_device_train_batch_size", {"data.batch_size", kHf}},
      {"adam_epsilon", {"optimizer.adamw_eps", kHf}},
      {"betas", {"optimizer.adamw_betas", "torch.optim.AdamW's"}},
  };
  return table;
}

const std::map<std::string, std::string>& settings_counted_otherwise() {
  static const std::map<std::string, std::string> table{
      {"eval_iters", "nanoGPT's eval_iters counts batches; 'run.eval_tokens' sets the validation tokens per evaluation"},
      {"min_lr", "nanoGPT's min_lr is a learning rate; 'schedule.min_ratio' is the final lr over the peak"},
      {"warmup_ratio", "Hugging Face's warmup_ratio is a fraction; 'schedule.warmup_steps' counts steps"},
  };
  return table;
}

namespace {

std::string section_of(const std::string& key) { return key.substr(0, key.find('.')); }
std::string last_part(const std::string& key) { return key.substr(key.rfind('.') + 1); }

std::optional<KeyAlias> alias_of(const std::string& key) {
  const std::string leaf = last_part(key);
  if (const auto it = trainer_key_aliases().find(leaf); it != trainer_key_aliases().end()) return it->second;
  if (const std::optional<models::ModelFieldAlias> model = models::model_field_alias(leaf)) {
    return KeyAlias{"model." + model->field, model->whose};
  }
  return std::nullopt;
}

// The known keys named `name` after their section ("run.steps" for "steps"),
// quoted.
std::vector<std::string> keys_named(const std::string& name, const std::vector<std::string>& known_keys) {
  std::vector<std::string> keys;
  for (const std::string& known : known_keys) {
    if (known.substr(known.find('.') + 1) == name || last_part(known) == name) keys.push_back("'" + known + "'");
  }
  return keys;
}

// The key of another section that the typed one names: "schedule.adamw.lr"
// as "adamw_lr" (optimizer.adamw_lr), else by its last part alone
// ("training.steps": run.steps).
std::vector<std::string> same_name_elsewhere(const std::string& key, const std::vector<std::string>& known_keys) {
  std::string joined = key.substr(key.find('.') + 1);
  std::replace(joined.begin(), joined.end(), '.', '_');
  if (std::vector<std::string> keys = keys_named(joined, known_keys); !keys.empty()) return keys;
  return keys_named(last_part(key), known_keys);
}

// A typo of a key: its section's nearest key by the part after the
// section, the section itself read as the nearest one when unknown
// ("optimzer.lr": optimizer.lr).
std::string nearest_key(const std::string& key, const std::vector<std::string>& known_keys) {
  std::vector<std::string> sections;
  for (const std::string& known : known_keys) {
    if (std::find(sections.begin(), sections.end(), section_of(known)) == sections.end()) {
      sections.push_back(section_of(known));
    }
  }
  std::string section = section_of(key);
  if (std::find(sections.begin(), sections.end(), section) == sections.end()) section = nearest_name(section, sections);
  if (section.empty()) return "";
  std::vector<std::string> names;
  for (const std::string& known : known_keys) {
    if (section_of(known) == section) names.push_back(known.substr(section.size() + 1));
  }
  const std::string near = nearest_name(key.substr(key.find('.') + 1), names);
  return near.empty() ? "" : section + "." + near;
}

}  // namespace

std::string unknown_key_hint(const std::string& key, const std::vector<std::string>& known_keys) {
  if (const auto it = settings_counted_otherwise().find(last_part(key)); it != settings_counted_otherwise().end()) {
    return fmt::format(" ({})", it->second);
  }
  if (const std::optional<KeyAlias> alias = alias_of(key)) {
    return fmt::format(" ({} name for '{}')", alias->whose, alias->key);
  }
  if (const std::vector<std::string> same = same_name_elsewhere(key, known_keys); !same.empty()) {
    return fmt::format(" (did you mean {}?)", fmt::join(same, " or "));
  }
  const std::string near = nearest_key(key, known_keys);
  return near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near);
}

}  // namespace muonlab::training
