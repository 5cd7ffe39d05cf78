// Unknown config keys answered with the key meant: another tool's name for
// it, the same name in another section, or a near typo. The alias tables
// are checked against the keys the config actually accepts, so a renamed key
// cannot leave a hint pointing nowhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>

#include "muonlab/core/nearest_name.h"
#include "muonlab/models/model_config.h"
#include "muonlab/models/model_field_aliases.h"
#include "muonlab/training/config_key_hint.h"
#include "muonlab/training/train_config.h"
#include "test_util.h"

namespace muonlab::training {
namespace {

const char* kSmallConfig = R"([data]
train = "shards/t_train_*.bin"
[model]
preset = "tiny-gpt2"
)";

std::string error_of_setting(const std::string& assignment) {
  return testing::error_message([&] { parse_train_config(kSmallConfig, "train.toml", {assignment}); });
}

bool is_model_field(const std::string& name) {
  const std::vector<std::string> names = models::config_field_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

// A key the config accepts: a row of the config reference, or a model field.
bool is_config_key(const std::string& key) {
  if (key.rfind("model.", 0) == 0 && is_model_field(key.substr(6))) return true;
  return format_config_reference().find("| `" + key + "` |") != std::string::npos;
}

// True when some accepted key ends in `name` (as "steps" in run.steps).
bool names_a_key_part(const std::string& name) {
  if (is_model_field(name)) return true;
  return format_config_reference().find("." + name + "` |") != std::string::npos;
}

TEST(ConfigKeyHint, EveryAliasPointsAtAKeyTheConfigAcceptsAndShadowsNone) {
  ASSERT_TRUE(is_config_key("run.steps"));  // the checks below can succeed
  ASSERT_TRUE(is_config_key("model.mla.kv_latent"));
  ASSERT_FALSE(is_config_key("run.stepz"));  // and fail
  for (const auto& [name, alias] : trainer_key_aliases()) {
    EXPECT_TRUE(is_config_key(alias.key)) << name << " -> " << alias.key;
    EXPECT_FALSE(names_a_key_part(name)) << name << " is one of muonlab's own names";
  }
  for (const auto& [name, alias] : models::model_field_aliases()) {
    EXPECT_TRUE(is_model_field(alias.field)) << name << " -> " << alias.field;
    EXPECT_FALSE(names_a_key_part(name)) << name << " is one of muonlab's own names";
  }
  const std::regex quoted_key("'([a-z_.]+)'");
  for (const auto& [name, sentence] : settings_counted_otherwise()) {
    std::smatch match;
    ASSERT_TRUE(std::regex_search(sentence, match, quoted_key)) << sentence;
    EXPECT_TRUE(is_config_key(match[1].str())) << sentence;
    EXPECT_FALSE(names_a_key_part(name)) << name;
  }
}

TEST(ConfigKeyHint, AnotherToolsNameGivesMuonlabsKey) {
  EXPECT_CONTAINS(error_of_setting("run.max_iters=3"), "unknown key 'run.max_iters' (nanoGPT's name for 'run.steps')");
  EXPECT_CONTAINS(error_of_setting("optimizer.learning_rate=0.1"), "name for 'optimizer.lr')");
  EXPECT_CONTAINS(error_of_setting("model.n_embd=64"),
                  "unknown key 'model.n_embd' (nanoGPT's and Hugging Face GPT-2's name for 'model.d_model'): "
                  "[model] has preset, name");
  EXPECT_CONTAINS(error_of_setting("model.moe.n_routed_experts=4"), "name for 'model.moe.num_routed')");
  // Under any section: the last part names it.
  EXPECT_CONTAINS(error_of_setting("training.gradient_accumulation_steps=2"), "name for 'run.grad_accum')");
  EXPECT_CONTAINS(error_of_setting("run.eval_iters=20"), "eval_iters counts batches; 'run.eval_tokens'");
}

TEST(ConfigKeyHint, TheSameNameInAnotherSectionIsNamed) {
  EXPECT_CONTAINS(error_of_setting("training.steps=3"),
                  "unknown key 'training.steps' (did you mean 'run.steps'?): no section [training]");
  EXPECT_CONTAINS(error_of_setting("run.batch_size=4"), "(did you mean 'data.batch_size'?): [run] has");
  EXPECT_CONTAINS(error_of_setting("model.seq_len=64"), "(did you mean 'data.seq_len'?): [model] has");
  EXPECT_CONTAINS(error_of_setting("run.warmup_steps=5"),
                  "(did you mean 'schedule.warmup_steps' or 'schedule.adamw.warmup_steps'?)");
  // [schedule.adamw] holds the AdamW part's schedule; its lr is optimizer.adamw_lr.
  EXPECT_CONTAINS(error_of_setting("schedule.adamw.lr=0.01"), "(did you mean 'optimizer.adamw_lr'?)");
}

TEST(ConfigKeyHint, ANearTypoIsNamedAndAFarNameIsNot) {
  EXPECT_CONTAINS(error_of_setting("run.stepz=3"), "unknown key 'run.stepz' (did you mean 'run.steps'?): [run] has");
  EXPECT_CONTAINS(error_of_setting("optimzer.lr=0.1"), "(did you mean 'optimizer.lr'?): no section [optimzer]");
  EXPECT_CONTAINS(error_of_setting("model.mla.kv_latnt=8"), "(did you mean 'model.mla.kv_latent'?)");
  EXPECT_CONTAINS(testing::error_message([] { parse_train_config("[optimiser]\nlr = 0.1\n", "train.toml"); }),
                  "train.toml:1: unknown section 'optimiser' (did you mean [optimizer]?): expected [model]");
  const std::string far = error_of_setting("run.frobnicate=1");
  EXPECT_CONTAINS(far, "unknown key 'run.frobnicate': [run] has steps");
  EXPECT_EQ(far.find("did you mean"), std::string::npos) << far;
}

TEST(ConfigKeyHint, ModelInfoOverridesGetTheModelFieldsHints) {
  const auto error_of_field = [](const std::string& assignment) {
    return testing::error_message([&] {
      models::ModelConfig config = models::model_preset("tiny-gpt2");
      models::apply_override(config, assignment);
    });
  };
  EXPECT_CONTAINS(error_of_field("num_key_value_heads=2"),
                  "unknown model config field 'num_key_value_heads' (Hugging Face's name for 'n_kv_head'): expected");
  EXPECT_CONTAINS(error_of_field("n_layr=2"), "unknown model config field 'n_layr' (did you mean 'n_layer'?)");
  EXPECT_CONTAINS(error_of_field("wibble=2"), "unknown model config field 'wibble': expected one of");
}

TEST(NearestName, CountsEditsAndRefusesFarNames) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("steps", "steps"), 0u);
  EXPECT_EQ(nearest_name("stepz", {"seed", "steps", "device"}), "steps");
  EXPECT_EQ(nearest_name("frobnicate", {"seed", "steps", "device"}), "");
}

}  // namespace
}  // namespace muonlab::training
