// Weights stored transposed, [in, out] (Hugging Face GPT-2's Conv1D): a
// parameter tagged `transposed` must take exactly the transpose of the step
// its [out, in] twin takes, through every part that tells outputs from
// inputs (the shape scale, NorMuon's output neurons, Group Muon's head
// blocks and block scale) and through the parts that do not (Newton-Schulz,
// Muon²'s and Muon²-F's second moments), on the general path and the fused
// CPU one. The [out, in] twin is the reference: an nn.Linear-style weight
// stepped the way every other test checks.
#include <gtest/gtest.h>

#include "muonlab/optimizers/muon.h"
#include "muonlab/optimizers/muon_step.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using testing::error_message;

constexpr int64_t kBlockHeads = 4, kBlockHeadDim = 3, kBlockWidth = kBlockHeads * kBlockHeadDim;

// One parameter as the model would hold it: `out_in` is the [out, in]
// weight; stored transposed it is out_in^T, tagged so.
TaggedParam stored_param(const std::string& name, const torch::Tensor& out_in, bool stored_transposed,
                         ParamRole role, std::optional<HeadLayout> heads = std::nullopt) {
  TaggedParam p;
  p.name = name;
  const torch::Tensor stored = stored_transposed ? out_in.transpose(-2, -1) : out_in;
  p.tensor = stored.contiguous().detach().clone().set_requires_grad(true);
  p.role = role;
  p.heads = heads;
  p.transposed = stored_transposed;
  return p;
}

// The head layout of `heads` along the other axis, as it reads on the
// transposed storage.
std::optional<HeadLayout> heads_flipped(std::optional<HeadLayout> heads) {
  if (heads) heads->axis = heads->axis == HeadAxis::kRows ? HeadAxis::kCols : HeadAxis::kRows;
  return heads;
}

struct BlockWeight {
  std::string name;
  torch::Tensor out_in;
  ParamRole role;
  std::optional<HeadLayout> heads;
};

// A GPT-2 block's matrices as [out, in]: fused QKV (heads along the rows),
// the output projection (heads along the columns), the MLP's up and down
// projections (wide and tall: the 'original' scale tells them apart), and
// a stack of expert weights.
std::vector<BlockWeight> gpt2_block(torch::Dtype dtype) {
  torch::manual_seed(11);
  const auto opts = torch::TensorOptions().dtype(dtype);
  return {
      {"attn.c_attn", torch::randn({3 * kBlockWidth, kBlockWidth}, opts), ParamRole::kAttnQKV,
       HeadLayout{3 * kBlockHeads, kBlockHeadDim, HeadAxis::kRows, {kBlockHeads, kBlockHeads, kBlockHeads}}},
      {"attn.c_proj", torch::randn({kBlockWidth, kBlockWidth}, opts), ParamRole::kAttnO,
       HeadLayout{kBlockHeads, kBlockHeadDim, HeadAxis::kCols, {}}},
      {"mlp.c_fc", torch::randn({4 * kBlockWidth, kBlockWidth}, opts), ParamRole::kMlp, std::nullopt},
      {"mlp.c_proj", torch::randn({kBlockWidth, 4 * kBlockWidth}, opts), ParamRole::kMlp, std::nullopt},
      {"moe.experts", torch::randn({3, 2 * kBlockWidth, kBlockWidth}, opts), ParamRole::kExpert, std::nullopt},
  };
}

// The weights after `steps` steps of Muon under `options`, each stored as
// asked (transposed: [in, out] and tagged, or as the [out, in] reference),
// returned as [out, in] for comparison. `tag` false stores them transposed
// without saying so (the mistake the flag exists for).
std::vector<torch::Tensor> steps_of_block(const std::vector<BlockWeight>& weights, const MuonOptions& options,
                                          bool transposed, bool tag = true, int steps = 3) {
  std::vector<TaggedParam> params;
  for (const auto& w : weights) {
    const auto heads = transposed ? heads_flipped(w.heads) : w.heads;
    params.push_back(stored_param(w.name, w.out_in, transposed, w.role, heads));
    params.back().transposed = transposed && tag;
  }
  Muon muon(params, options);
  for (int t = 0; t < steps; ++t) {
    torch::manual_seed(100 + t);
    for (size_t i = 0; i < params.size(); ++i) {
      // The same gradient for both storages: drawn as [out, in].
      const torch::Tensor g = torch::randn(weights[i].out_in.sizes(), weights[i].out_in.options());
      params[i].tensor.mutable_grad() = (transposed ? g.transpose(-2, -1) : g).contiguous();
    }
    muon.step();
  }
  std::vector<torch::Tensor> out_in;
  for (const auto& p : params) out_in.push_back(transposed ? p.tensor.detach().transpose(-2, -1) : p.tensor.detach());
  return out_in;
}

MuonOptions transposed_test_options() {
  return MuonOptions(0.05).weight_decay(0.01).ns_dtype(NsDtype::kFloat64).nd_params(NdParams::kBatch);
}

// Every variant whose step tells outputs from inputs, and those that do not.
std::vector<std::pair<std::string, MuonOptions>> orientation_variants(const MuonOptions& base) {
  return {
      {"muon, original scale", MuonOptions(base).scale_rule(ScaleRule::kOriginal)},
      {"muon, spectral scale", MuonOptions(base).scale_rule(ScaleRule::kSpectral)},
      {"muon2", MuonOptions(base).second_moment(SecondMomentKind::kFull).ns_steps(3)},
      {"muon2f", MuonOptions(base).second_moment(SecondMomentKind::kFactored).ns_steps(3)},
      {"normuon", MuonOptions(base).neuron_norm(true)},
      {"group muon g = 2, block scale", MuonOptions(base).group_size(2).block_scale(true)},
      {"group muon g = 1, random", MuonOptions(base).group_size(1).grouping_rule(GroupingRule::kRandom)},
      {"normuon with group muon", MuonOptions(base).neuron_norm(true).group_size(2)},
  };
}

void expect_transposed_steps_match(const MuonOptions& base, double tolerance) {
  for (const auto& [what, options] : orientation_variants(base)) {
    const auto weights = gpt2_block(base.ns_dtype() == NsDtype::kFloat64 ? torch::kFloat64 : torch::kFloat32);
    const auto reference = steps_of_block(weights, options, /*transposed=*/false);
    const auto transposed = steps_of_block(weights, options, /*transposed=*/true);
    for (size_t i = 0; i < weights.size(); ++i) {
      EXPECT_TRUE(torch::allclose(transposed[i], reference[i], tolerance, tolerance))
          << what << ", " << weights[i].name << ": max difference "
          << (transposed[i] - reference[i]).abs().max().item<double>();
    }
  }
}

TEST(TransposedWeight, StepIsTheTransposeOfTheOutInTwinsStep) {
  expect_transposed_steps_match(transposed_test_options(), 1e-12);
}

// fp32 on the CPU: the fused step where it applies (it reads the stored
// matrix whole, NS does not care), the general path where the flag needs
// it (NorMuon, block scale); within fp32 rounding of the [out, in] twin's
// fused step.
TEST(TransposedWeight, FusedCpuStepToo) {
  expect_transposed_steps_match(transposed_test_options().ns_dtype(NsDtype::kFloat32), 2e-5);
  expect_transposed_steps_match(transposed_test_options().ns_dtype(NsDtype::kFloat32).fused(false), 2e-5);
}

// Without the flag a [in, out] weight is read as out x in the wrong way
// round: the 'original' scale of the MLP matrices and NorMuon's neurons
// differ, which is what makes the tests above able to fail.
TEST(TransposedWeight, UntaggedTransposedStorageStepsDifferently) {
  const auto weights = gpt2_block(torch::kFloat64);
  for (const auto& [what, options] :
       std::vector<std::pair<std::string, MuonOptions>>{{"original scale", transposed_test_options()},
                                                        {"normuon", transposed_test_options().neuron_norm(true)}}) {
    const auto reference = steps_of_block(weights, options, false);
    const auto untagged = steps_of_block(weights, options, true, /*tag=*/false);
    EXPECT_FALSE(torch::allclose(untagged[2], reference[2], 1e-6, 1e-6)) << what << ": mlp.c_fc";
    EXPECT_FALSE(torch::allclose(untagged[3], reference[3], 1e-6, 1e-6)) << what << ": mlp.c_proj";
  }
}

TEST(TransposedWeight, NeuronStateHasOneEntryPerOutputNeuron) {
  TaggedParam p =
      stored_param("mlp.c_fc", torch::zeros({8, 3}, torch::kFloat64), /*stored_transposed=*/true, ParamRole::kMlp);
  const auto options = transposed_test_options().neuron_norm(true);
  const MatrixView view = check_muon_param(p.tensor, p.name, options, &p);
  EXPECT_EQ(view.out_features(), 8);
  EXPECT_EQ(view.in_features(), 3);
  const auto shapes = muon_state_shapes(p.tensor, options, view);
  EXPECT_EQ(shapes.back().first, "neuron_second_moment");
  EXPECT_EQ(shapes.back().second, std::vector<int64_t>{8});
}

TEST(TransposedWeight, AFlattenedKernelCannotBeTransposed) {
  TaggedParam conv;
  conv.name = "conv.weight";
  conv.tensor = torch::zeros({4, 2, 3});
  conv.transposed = true;
  const auto flatten = MuonOptions().nd_params(NdParams::kFlatten);
  const auto message = error_message([&] { check_muon_param(conv.tensor, conv.name, flatten, &conv); });
  EXPECT_NE(message.find("'conv.weight'"), std::string::npos) << message;
  EXPECT_NE(message.find("stored transposed"), std::string::npos) << message;
}

}  // namespace
}  // namespace muonlab::optim
