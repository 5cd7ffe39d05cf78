// Optimizer state files: an exact round trip (the resumed optimizer takes
// bit-identical steps), and mismatches refused by name with nothing changed.
#include <filesystem>
#include <fstream>

#include "muonlab/optimizers/hybrid.h"
#include "test_util.h"
#include "muonlab/core/remove_tree.h"
#include "tiny_model.h"

namespace muonlab::optim {
namespace {

using testing::error_message;

const MuonOptions kSavedMuon = MuonOptions(0.02);
const AdamWOptions kSavedAdamW = AdamWOptions(1e-2);

class StateFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("muonlab_state_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { remove_tree(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

void train(testing::TinyModel& model, MuonWithAuxAdamW& optimizer, int steps, uint64_t seed) {
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    model->loss(testing::tiny_batch(seed + step)).backward();
    optimizer.step();
  }
}

// A seeded tiny model with a hybrid optimizer trained for `steps` steps.
struct TrainedHybrid {
  testing::TinyModel model;
  std::unique_ptr<MuonWithAuxAdamW> optimizer;
};

TrainedHybrid trained_hybrid(uint64_t seed, int64_t vocab, int64_t d, int steps) {
  TrainedHybrid trained{testing::make_tiny_model(seed, vocab, d), nullptr};
  trained.optimizer =
      std::make_unique<MuonWithAuxAdamW>(trained.model->named_parameters(), kSavedMuon, kSavedAdamW);
  train(trained.model, *trained.optimizer, steps, 100);
  return trained;
}

void copy_weights(testing::TinyModel& from, testing::TinyModel& to) {
  torch::NoGradGuard no_grad;
  const auto source = from->named_parameters();
  for (auto& item : to->named_parameters()) item.value().copy_(source[item.key()]);
}

TEST_F(StateFiles, ResumedHybridStepsBitForBit) {
  auto model = testing::make_tiny_model(1);
  MuonWithAuxAdamW optimizer(model->named_parameters(), kSavedMuon, kSavedAdamW);
  train(model, optimizer, 3, 100);
  optimizer.save_to_file(path("opt.pt"));

  // A fresh model and optimizer resume from the saved weights and state.
  auto resumed_model = testing::make_tiny_model(2);
  copy_weights(model, resumed_model);
  MuonWithAuxAdamW resumed(resumed_model->named_parameters(), kSavedMuon, kSavedAdamW);
  resumed.load_from_file(path("opt.pt"));
  EXPECT_EQ(resumed.step_count(), 3);

  train(model, optimizer, 2, 200);
  train(resumed_model, resumed, 2, 200);
  const auto expected = model->named_parameters();
  for (const auto& item : resumed_model->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), expected[item.key()])) << item.key();
  }
}

TEST_F(StateFiles, MomentumBuffersRoundTripExactly) {
  torch::manual_seed(3);
  auto p = torch::randn({6, 10}).set_requires_grad(true);
  p.mutable_grad() = torch::randn({6, 10});
  torch::OrderedDict<std::string, torch::Tensor> named;
  named.insert("w", p);
  Muon muon(named, kSavedMuon);
  muon.step();
  muon.save_to_file(path("muon.pt"));

  Muon loaded(named, kSavedMuon);
  loaded.load_from_file(path("muon.pt"));
  const auto key = compat::optimizer_state_key(p);
  const auto& saved = static_cast<MuonParamState&>(*muon.state().at(key));
  const auto& restored = static_cast<MuonParamState&>(*loaded.state().at(key));
  EXPECT_TRUE(torch::equal(saved.momentum_buffer(), restored.momentum_buffer()));
  EXPECT_EQ(restored.step(), 1);
}

TEST_F(StateFiles, RefusesAMismatchedShapeByNameAndKeepsItsState) {
  trained_hybrid(1, /*vocab=*/32, /*d=*/8, 1).optimizer->save_to_file(path("opt.pt"));

  // A wider model has the same names with other shapes.
  auto other = trained_hybrid(4, /*vocab=*/32, /*d=*/12, 1);
  const auto before = testing::saved_bytes(*other.optimizer);

  const auto message = error_message([&] { other.optimizer->load_from_file(path("opt.pt")); });
  EXPECT_NE(message.find(path("opt.pt")), std::string::npos) << message;
  EXPECT_NE(message.find("shape"), std::string::npos) << message;
  EXPECT_NE(message.find("h0.c_attn.weight"), std::string::npos) << message;

  EXPECT_EQ(testing::saved_bytes(*other.optimizer), before) << "a refused load changed the state";
}

TEST_F(StateFiles, HybridRestoresItsMuonPartWhenTheAdamWPartIsRefused) {
  trained_hybrid(1, /*vocab=*/32, /*d=*/8, 2).optimizer->save_to_file(path("opt.pt"));

  // A larger vocabulary: the Muon matrices match, the embeddings do not, so
  // the Muon part loads and the AdamW part is refused afterwards.
  auto other = trained_hybrid(5, /*vocab=*/40, /*d=*/8, 1);
  const auto before = testing::saved_bytes(*other.optimizer);

  const auto message = error_message([&] { other.optimizer->load_from_file(path("opt.pt")); });
  EXPECT_NE(message.find("'wte.weight'"), std::string::npos) << message;

  EXPECT_EQ(testing::saved_bytes(*other.optimizer), before) << "the Muon part stayed loaded";
  EXPECT_EQ(other.optimizer->step_count(), 1);
}

TEST_F(StateFiles, RefusesMissingAndExtraParametersByName) {
  torch::OrderedDict<std::string, torch::Tensor> two, one;
  auto a = torch::randn({4, 4}).set_requires_grad(true);
  auto b = torch::randn({4, 4}).set_requires_grad(true);
  two.insert("layer.a", a);
  two.insert("layer.b", b);
  one.insert("layer.a", a);
  Muon small(one, kSavedMuon);
  small.save_to_file(path("one.pt"));
  Muon big(two, kSavedMuon);
  big.save_to_file(path("two.pt"));

  auto message = error_message([&] { big.load_from_file(path("one.pt")); });
  EXPECT_NE(message.find("no entry for parameter 'layer.b'"), std::string::npos) << message;
  message = error_message([&] { small.load_from_file(path("two.pt")); });
  EXPECT_NE(message.find("'layer.b'"), std::string::npos) << message;
}

TEST_F(StateFiles, RefusesAnotherOptimizersState) {
  const std::vector<torch::Tensor> params{torch::randn({4, 4})};
  AdamW(params, kSavedAdamW).save_to_file(path("adamw.pt"));
  Muon muon(params, kSavedMuon);
  const auto message = error_message([&] { muon.load_from_file(path("adamw.pt")); });
  EXPECT_NE(message.find("saved by 'adamw'"), std::string::npos) << message;
}

TEST_F(StateFiles, RefusesACorruptFileNamingIt) {
  std::ofstream(path("garbage.pt")) << "not a state file";
  Muon muon(std::vector<torch::Tensor>{torch::randn({4, 4})}, kSavedMuon);
  const auto message = error_message([&] { muon.load_from_file(path("garbage.pt")); });
  EXPECT_NE(message.find(path("garbage.pt")), std::string::npos) << message;
}

TEST_F(StateFiles, AFailedSaveLeavesThePreviousFile) {
  Muon muon(std::vector<torch::Tensor>{torch::randn({4, 4})}, kSavedMuon);
  muon.save_to_file(path("opt.pt"));
  const auto size = std::filesystem::file_size(path("opt.pt"));
  // A directory where the temporary file would go makes the write fail.
  std::filesystem::create_directories(path("opt.pt") + ".tmp." + std::to_string(::getpid()));
  EXPECT_THROW(muon.save_to_file(path("opt.pt")), std::exception);
  EXPECT_EQ(std::filesystem::file_size(path("opt.pt")), size);
  Muon reloaded(std::vector<torch::Tensor>{torch::randn({4, 4})}, kSavedMuon);
  EXPECT_NO_THROW(reloaded.load_from_file(path("opt.pt")));
}

}  // namespace
}  // namespace muonlab::optim
