// Model files: an exact round trip, and mismatches refused by name with the
// model left as it was.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "models/model_test_util.h"
#include "muonlab/models/model_file.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

using testing::tiny_config;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("muonlab_" + name)).string();
}

TEST(ModelFile, RoundTripRebuildsTheSameModel) {
  const auto path = temp_path("model_roundtrip.pt");
  torch::manual_seed(51);
  Transformer original(tiny_config("tiny-mla-moe", {"moe.capacity_factor=1.5"}));
  save_model(original, path);
  auto loaded = load_model(path);
  EXPECT_EQ(describe(loaded->config()), describe(original->config()));
  const auto tokens = torch::randint(0, 64, {2, 6});
  EXPECT_TENSOR_NEAR(loaded(tokens).logits, original(tokens).logits, 0);
  std::remove(path.c_str());
}

TEST(ModelFile, ShapeMismatchNamesTheParameterAndChangesNothing) {
  const auto path = temp_path("model_mismatch.pt");
  torch::manual_seed(52);
  save_model(Transformer(tiny_config("tiny-gpt2")), path);
  Transformer other(tiny_config("tiny-gpt2", {"vocab_size=65"}));
  const auto before = other->named_parameters()["h.0.attn.c_attn.weight"].clone();
  const auto message = testing::error_message([&] { load_model_weights(other, path); });
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "'wte.weight' has shape [64, 32], the model expects [65, 32]");
  EXPECT_TENSOR_NEAR(other->named_parameters()["h.0.attn.c_attn.weight"], before, 0);
  std::remove(path.c_str());
}

TEST(ModelFile, MissingParameterIsNamed) {
  const auto path = temp_path("model_missing.pt");
  torch::manual_seed(53);
  save_model(Transformer(tiny_config("tiny-llama")), path);
  Transformer with_qk_norm(tiny_config("tiny-llama", {"qk_norm=true"}));
  EXPECT_CONTAINS(testing::error_message([&] { load_model_weights(with_qk_norm, path); }),
                  "parameter 'h.0.attn.q_norm.weight' is missing");
  std::remove(path.c_str());
}

TEST(ModelFile, NotAModelFileFailsNamingThePath) {
  const auto path = temp_path("not_a_model.pt");
  { std::ofstream(path) << "hello"; }
  EXPECT_CONTAINS(testing::error_message([&] { read_model_config(path); }), path);
  std::remove(path.c_str());
}

TEST(ModelFile, MissingFileIsNamedAsMissing) {
  const auto path = temp_path("no_such_model.pt");
  std::remove(path.c_str());
  const auto message = testing::error_message([&] { load_model(path); });
  EXPECT_CONTAINS(message, "cannot read '" + path + "': no such file");
}

}  // namespace
}  // namespace muonlab::models
