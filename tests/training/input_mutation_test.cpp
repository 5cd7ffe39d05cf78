// Mutation fuzzing of the two text inputs a run reads besides data: the TOML
// config and a checkpoint's state.json. Thousands of inputs, each a valid
// file with random byte flips, deletions, insertions of TOML/JSON syntax and
// repeated lines, must each parse or fail with muonlab::Error (the CLI's
// "muonlab: error: ..." naming the file); any other exception, or a crash,
// is a bug. Deterministic seeds, so a failure reproduces. These readers
// need LibTorch, which the libFuzzer build (fuzz/) does not link, hence a
// GoogleTest here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "data/data_test_util.h"
#include "muonlab/core/errors.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/training/train_config.h"
#include "muonlab/training/train_optimizer.h"

namespace muonlab::training {
namespace {

// One to four random edits of `text`.
std::string mutated(std::string text, std::mt19937_64& rng) {
  static const std::string kSyntax = "[]{}=\"'.,:#\n -+0123456789eE_infatrulsn\\";
  const auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  const int edits = 1 + static_cast<int>(pick(4));
  for (int e = 0; e < edits && !text.empty(); ++e) {
    const size_t at = pick(text.size());
    switch (pick(5)) {
      case 0: text[at] = static_cast<char>(pick(256)); break;
      case 1: text.erase(at, 1 + pick(8)); break;
      case 2: text.insert(at, 1, kSyntax[pick(kSyntax.size())]); break;
      case 3: {  // a line repeated (duplicate keys and tables)
        const size_t start = text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at) + 1;
        const size_t end = text.find('\n', at);
        text.insert(start, text.substr(start, end == std::string::npos ? std::string::npos : end - start + 1));
        break;
      }
      default: text.insert(at, std::to_string(static_cast<int64_t>(rng())));  // huge numbers
    }
  }
  return text;
}

// Runs `read` on `input`; returns what escaped other than muonlab::Error.
template <typename Read>
std::string unexpected_failure(const std::string& input, Read read) {
  try {
    read(input);
  } catch (const Error&) {
  } catch (const std::exception& error) {
    return std::string("exception ") + typeid(error).name() + ": " + error.what();
  }
  return "";
}

const char* const kConfig = R"([model]
preset = "tiny-gpt2"
vocab_size = 257
block_size = 64
[data]
train = "shards/t_train_*.bin"
batch_size = 8
[optimizer]
name = "muon"
lr = 0.02
grouped = ["q", "k"]
adamw_betas = [0.9, 0.95]
[schedule]
kind = "wsd"
warmup_steps = 10
[schedule.adamw]
warmup_steps = 5
[run]
steps = 150
one_step_group_sizes = [1, 2]
[distributed]
timeout_s = 30.0
)";

TEST(InputMutation, ConfigReaderFailsOnlyWithNamedErrors) {
  const std::string resolved = format_train_config(parse_train_config(kConfig, "seed.toml"));
  std::mt19937_64 rng(2026);
  int parsed = 0;
  for (int i = 0; i < 40000; ++i) {
    const std::string input = mutated(i % 2 ? resolved : std::string(kConfig), rng);
    const std::string failure = unexpected_failure(input, [&](const std::string& text) {
      parse_train_config(text, "mutated.toml");
      ++parsed;
    });
    ASSERT_EQ(failure, "") << "input " << i << ":\n" << input;
  }
  EXPECT_GT(parsed, 0);  // some mutations (in comments, values) still parse
}

TEST(InputMutation, StateJsonReaderFailsOnlyWithNamedErrors) {
  testing::ScratchDir dir;
  TrainConfig config = parse_train_config(kConfig, "seed.toml", {"run.out_dir=" + dir.file("run")});
  models::Transformer model(config.model);
  TrainOptimizer optimizer(model, config.optimizer);
  const std::string folder = save_checkpoint(config, {7, {1, 3}}, model, optimizer);
  const std::string state_path = (std::filesystem::path(folder) / "state.json").string();
  std::ifstream in(state_path);
  const std::string state_json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Hand-made: fields of the wrong type where objects and numbers belong.
  for (const std::string& input : {std::string(R"({"step": 7, "loader_epoch": 1, "loader_batch": 3, "identity": 5})"),
                                   std::string(R"({"step": "7", "loader_epoch": 1, "loader_batch": 3})"),
                                   std::string(R"({"step": -7, "loader_epoch": 1, "loader_batch": 3, "files": []})"),
                                   std::string(R"([1, 2])")}) {
    EXPECT_EQ(unexpected_failure(input, [&](const std::string& text) {
                std::ofstream(state_path, std::ios::trunc) << text;
                load_checkpoint(folder, config, model, optimizer);
              }),
              "")
        << input;
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 3000; ++i) {
    const std::string input = mutated(state_json, rng);
    const std::string failure = unexpected_failure(input, [&](const std::string& text) {
      std::ofstream(state_path, std::ios::trunc) << text;
      load_checkpoint(folder, config, model, optimizer);
    });
    ASSERT_EQ(failure, "") << "input " << i << ":\n" << input;
  }
}

}  // namespace
}  // namespace muonlab::training
