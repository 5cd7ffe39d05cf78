// Muon's CUDA-graph path (MuonOptions::cuda_graph). On the CPU: the key that
// decides between a replay and a real step holds every address and option
// value the replayed half reads and not the learning rate, the option
// changes nothing, and zero_grad() frees gradients as torch's does. On a GPU (skipped without one): replayed steps give the
// eager steps' weights while the lr and weight decay change every step, and
// steps that must not be replayed are not, and zero_grad() keeps the
// graphed gradients where the graph reads them.
#include "muonlab/optimizers/muon_step_graph.h"

#include <gtest/gtest.h>

#include "muonlab/optimizers/muon.h"
#include "attention_params.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using testing::random_matrix;

// Attention-shaped parameters (4 heads of 8) with gradients that stay where
// they are.
std::vector<TaggedParam> block_params(torch::Device device) {
  auto params = testing::attention_params(device, torch::kFloat32, /*head_dim=*/8);
  for (auto& p : params) p.tensor.mutable_grad() = torch::zeros_like(p.tensor);
  return params;
}

// New gradient values in the same memory, as backward accumulates them
// into gradients zeroed in place.
void set_gradients(std::vector<TaggedParam>& params, int step) {
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i].tensor;
    p.mutable_grad().copy_(random_matrix(p.size(0), p.size(1), 100 * step + i, torch::kFloat32));
  }
}

// The graphed optimizer's weights are the eager one's, up to the rounding
// of kernels launched in another order.
void expect_same_weights(const std::vector<TaggedParam>& graphed, const std::vector<TaggedParam>& eager) {
  for (size_t i = 0; i < graphed.size(); ++i) {
    EXPECT_LT((eager[i].tensor - graphed[i].tensor).abs().max().item<double>(), 1e-6) << graphed[i].name;
  }
}

std::vector<MuonSlot> slots_of(std::vector<TaggedParam>& params, const MuonOptions& options, int64_t step) {
  std::vector<MuonSlot> slots;
  for (auto& p : params) {
    MuonSlot slot;
    slot.name = p.name;
    slot.param = p.tensor;
    slot.grad = p.tensor.grad();
    slot.momentum_buffer = torch::zeros_like(p.tensor);
    slot.options = &options;
    slot.tag = &p;
    slot.step = step;
    slots.push_back(std::move(slot));
  }
  return slots;
}

TEST(MuonStepGraph, KeyHoldsWhatTheReplayReadsAndNotTheLearningRate) {
  auto params = block_params(torch::kCPU);
  const MuonOptions options = MuonOptions(0.02).cuda_graph(true);
  auto slots = slots_of(params, options, 1);
  const auto key = MuonStepGraph::key_of(slots);
  EXPECT_TRUE(MuonStepGraph::key_of(slots) == key);

  // The second half's scalars: a schedule must not force a new capture.
  const MuonOptions other_lr = MuonOptions(options).lr(0.001).weight_decay(0.5);
  for (auto& slot : slots) slot.options = &other_lr;
  EXPECT_TRUE(MuonStepGraph::key_of(slots) == key);

  // The first half's scalars.
  const MuonOptions other_momentum = MuonOptions(options).momentum(0.9);
  for (auto& slot : slots) slot.options = &other_momentum;
  EXPECT_FALSE(MuonStepGraph::key_of(slots) == key);
  const MuonOptions other_ns = MuonOptions(options).ns_steps(4);
  for (auto& slot : slots) slot.options = &other_ns;
  EXPECT_FALSE(MuonStepGraph::key_of(slots) == key);
  for (auto& slot : slots) slot.options = &options;

  // Memory the replay would read: a gradient elsewhere, a fresh momentum buffer.
  const torch::Tensor grad = slots[1].grad;
  slots[1].grad = grad.clone();
  EXPECT_FALSE(MuonStepGraph::key_of(slots) == key);
  slots[1].grad = grad;
  slots[2].momentum_buffer = torch::zeros_like(slots[2].param);
  EXPECT_FALSE(MuonStepGraph::key_of(slots) == key);
}

// Muon²'s bias correction 1 - beta2^t is a scalar of the replayed half: it
// keys steps apart until it rounds to 1 (t > 700 for beta2 = 0.95).
TEST(MuonStepGraph, MuonSquaredStepsShareAKeyOnceTheBiasCorrectionIsOne) {
  auto params = block_params(torch::kCPU);
  const MuonOptions muon2 = MuonOptions(0.02).second_moment(SecondMomentKind::kFull).ns_steps(3).cuda_graph(true);
  const auto key_at = [&](int64_t step) {
    auto slots = slots_of(params, muon2, step);
    for (size_t i = 0; i < slots.size(); ++i) slots[i].momentum_buffer = params[i].tensor.grad();  // same memory
    return MuonStepGraph::key_of(slots);
  };
  EXPECT_FALSE(key_at(10) == key_at(11));
  EXPECT_TRUE(key_at(2000) == key_at(2001));
  const MuonOptions without = MuonOptions(muon2).bias_correction(false);
  auto slots_10 = slots_of(params, without, 10), slots_11 = slots_of(params, without, 11);
  for (size_t i = 0; i < slots_10.size(); ++i) slots_11[i].momentum_buffer = slots_10[i].momentum_buffer;
  EXPECT_TRUE(MuonStepGraph::key_of(slots_10) == MuonStepGraph::key_of(slots_11));
}

TEST(MuonStepGraph, OnTheCpuTheOptionChangesNothing) {
  auto with = block_params(torch::kCPU);
  auto without = block_params(torch::kCPU);
  Muon graphed(with, MuonOptions(0.02).cuda_graph(true));
  Muon eager(without, MuonOptions(0.02));
  for (int step = 0; step < 3; ++step) {
    set_gradients(with, step);
    set_gradients(without, step);
    graphed.step();
    eager.step();
  }
  EXPECT_EQ(graphed.step_graph(), nullptr);
  for (size_t i = 0; i < with.size(); ++i) EXPECT_TRUE(torch::equal(with[i].tensor, without[i].tensor)) << with[i].name;
}

// Off the GPU nothing is replayed, so zero_grad() frees every gradient,
// as torch's does; set_to_none = false zeroes them where they are.
TEST(MuonStepGraph, ZeroGradOnTheCpuFreesOrZeroesInPlace) {
  auto params = block_params(torch::kCPU);
  Muon muon(params, MuonOptions(0.02).cuda_graph(true));
  set_gradients(params, 1);
  const void* memory = params[0].tensor.grad().data_ptr();
  muon.zero_grad(/*set_to_none=*/false);
  for (const auto& p : params) EXPECT_EQ(p.tensor.grad().abs().max().item<float>(), 0.0f) << p.name;
  EXPECT_EQ(params[0].tensor.grad().data_ptr(), memory);
  muon.zero_grad();
  for (const auto& p : params) EXPECT_FALSE(p.tensor.grad().defined()) << p.name;
}

// Six steps with a decaying lr and weight decay: the first runs for real,
// the second captures, and every step from the second on replays; the
// weights follow the eager optimizer's.
TEST(MuonStepGraphOnCuda, ReplayedStepsAreTheEagerSteps) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  const auto device = torch::Device(torch::kCUDA);
  for (const auto& options : {MuonOptions(0.02).weight_decay(0.1),
                              MuonOptions(0.02).group_size(2).second_moment(SecondMomentKind::kFactored).ns_steps(3)
                                  .bias_correction(false)}) {
    auto with = block_params(device);
    auto without = block_params(device);
    Muon graphed(with, MuonOptions(options).cuda_graph(true));
    Muon eager(without, options);
    for (int step = 0; step < 6; ++step) {
      const double lr = 0.02 / (1 + step);
      for (auto* muon : {&graphed, &eager}) muon->param_groups()[0].options().set_lr(lr);
      set_gradients(with, step);
      set_gradients(without, step);
      graphed.step();
      eager.step();
    }
    ASSERT_NE(graphed.step_graph(), nullptr);
    EXPECT_EQ(graphed.step_graph()->eager_steps(), 1);
    EXPECT_EQ(graphed.step_graph()->captures(), 1);
    EXPECT_EQ(graphed.step_graph()->replays(), 5);
    expect_same_weights(with, without);
  }
}

// Random grouping draws new blocks each step: never replayed. Muon² with
// its bias correction: every early step has its own key, so each runs for
// real (on the capture's stream) and none is captured.
TEST(MuonStepGraphOnCuda, StepsThatCannotBeReplayedRunForReal) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  const auto device = torch::Device(torch::kCUDA);
  auto random = block_params(device);
  Muon grouped(random, MuonOptions(0.02).group_size(2).grouping_rule(GroupingRule::kRandom).cuda_graph(true));
  auto muon2_params = block_params(device);
  Muon muon2(muon2_params, MuonOptions(0.02).second_moment(SecondMomentKind::kFull).ns_steps(3).cuda_graph(true));
  for (int step = 0; step < 3; ++step) {
    set_gradients(random, step);
    set_gradients(muon2_params, step);
    grouped.step();
    muon2.step();
  }
  EXPECT_EQ(grouped.step_graph(), nullptr);
  ASSERT_NE(muon2.step_graph(), nullptr);
  EXPECT_EQ(muon2.step_graph()->eager_steps(), 3);
  EXPECT_EQ(muon2.step_graph()->replays(), 0);
}

// A training loop as users write it: zero_grad(), backward, step(). The
// graphed Muon's gradients stay where the graph captured them, so its steps
// replay (zero_grad() freeing them would move every gradient and run every
// step eagerly) and follow a Muon whose gradients are freed.
TEST(MuonStepGraphOnCuda, ZeroGradKeepsTheGradientsTheGraphReads) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  const auto device = torch::Device(torch::kCUDA);
  auto with = block_params(device);
  auto without = block_params(device);
  Muon graphed(with, MuonOptions(0.02).cuda_graph(true));
  Muon eager(without, MuonOptions(0.02));
  std::vector<const void*> memory;
  for (const auto& p : with) memory.push_back(p.tensor.grad().data_ptr());
  for (int step = 0; step < 5; ++step) {
    for (auto* params : {&with, &without}) {
      for (size_t i = 0; i < params->size(); ++i) {
        auto& p = (*params)[i].tensor;
        const auto target = random_matrix(p.size(0), p.size(1), 100 * step + i, torch::kFloat32).to(device);
        (p * target).sum().backward();  // gradient: target
      }
    }
    graphed.step();
    eager.step();
    graphed.zero_grad();
    eager.zero_grad();
    for (size_t i = 0; i < with.size(); ++i) {
      ASSERT_TRUE(with[i].tensor.grad().defined()) << with[i].name;
      EXPECT_EQ(with[i].tensor.grad().data_ptr(), memory[i]) << with[i].name;
      EXPECT_EQ(with[i].tensor.grad().abs().max().item<float>(), 0.0f) << with[i].name;
      EXPECT_FALSE(without[i].tensor.grad().defined()) << without[i].name;
    }
  }
  EXPECT_EQ(graphed.step_graph()->replays(), 4);
  expect_same_weights(with, without);
}

}  // namespace
}  // namespace muonlab::optim
