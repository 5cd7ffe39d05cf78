// Parameters of more than two dimensions: a conv kernel steps as its
// out x (in*kh*kw) matrix, a stack of expert weights [E, r, c] as E
// matrices (each with its own second moment and scale), and the readings
// that would be guesses are refused by name.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "muonlab/optimizers/muon.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using testing::error_message;

MuonOptions fp64_options(SecondMomentKind kind = SecondMomentKind::kNone) {
  return MuonOptions(0.05).weight_decay(0.01).ns_dtype(NsDtype::kFloat64).second_moment(kind).ns_steps(5);
}

torch::Tensor leaf(const torch::Tensor& t) { return t.detach().clone().set_requires_grad(true); }

// Steps of `muon` on `param` with gradients grads[t].
void run_steps(Muon& muon, torch::Tensor& param, const std::vector<torch::Tensor>& grads) {
  for (const auto& g : grads) {
    param.mutable_grad() = g.clone();
    muon.step();
  }
}

std::vector<torch::Tensor> random_grads(c10::IntArrayRef shape, int steps, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> grads;
  for (int t = 0; t < steps; ++t) grads.push_back(torch::randn(shape, torch::kFloat64));
  return grads;
}

TEST(MuonNdParams, ConvKernelStepsAsItsFlattenedMatrix) {
  for (auto kind : {SecondMomentKind::kNone, SecondMomentKind::kFull, SecondMomentKind::kFactored}) {
    torch::manual_seed(3);
    torch::Tensor conv = leaf(torch::randn({8, 3, 3, 3}, torch::kFloat64));
    torch::Tensor flat = leaf(conv.reshape({8, 27}));
    const auto grads = random_grads(conv.sizes(), 3, 5);
    Muon conv_muon(std::vector<torch::Tensor>{conv}, fp64_options(kind));
    Muon flat_muon(std::vector<torch::Tensor>{flat}, fp64_options(kind));
    run_steps(conv_muon, conv, grads);
    std::vector<torch::Tensor> flat_grads;
    for (const auto& g : grads) flat_grads.push_back(g.reshape({8, 27}));
    run_steps(flat_muon, flat, flat_grads);
    EXPECT_TRUE(torch::allclose(conv.reshape({8, 27}), flat, 1e-12, 1e-12)) << to_string(kind);
  }
}

TEST(MuonNdParams, ExpertStackStepsAsSeparateMatrices) {
  const int64_t experts = 3;
  for (auto kind : {SecondMomentKind::kNone, SecondMomentKind::kFull, SecondMomentKind::kFactored}) {
    torch::manual_seed(7);
    torch::Tensor stack = leaf(torch::randn({experts, 4, 6}, torch::kFloat64));
    std::vector<torch::Tensor> singles;
    for (int64_t e = 0; e < experts; ++e) singles.push_back(leaf(stack[e]));
    const auto grads = random_grads(stack.sizes(), 3, 9);
    Muon stacked(std::vector<torch::Tensor>{stack}, fp64_options(kind).nd_params(NdParams::kBatch));
    run_steps(stacked, stack, grads);
    for (int64_t e = 0; e < experts; ++e) {
      Muon single(std::vector<torch::Tensor>{singles[e]}, fp64_options(kind));
      std::vector<torch::Tensor> expert_grads;
      for (const auto& g : grads) expert_grads.push_back(g[e]);
      run_steps(single, singles[e], expert_grads);
      EXPECT_TRUE(torch::allclose(stack[e], singles[e], 1e-12, 1e-12)) << to_string(kind) << " expert " << e;
    }
  }
}

// The fused CPU step (fp32 parameters) takes a stack matrix by matrix, on
// views of the stack's tensors: bit for bit what it does to E separate
// matrices (in fp32, within rounding of the general path, fused off), for
// Muon, Muon², Muon²-F and NorMuon, in both NS dtypes.
TEST(MuonNdParams, FusedCpuStepTakesAStackAsSeparateMatrices) {
  const int64_t experts = 3;
  const auto options = [](SecondMomentKind kind, bool neuron_norm, NsDtype dtype) {
    return MuonOptions(0.05).weight_decay(0.01).second_moment(kind).neuron_norm(neuron_norm).ns_dtype(dtype);
  };
  for (auto dtype : {NsDtype::kFloat32, NsDtype::kBFloat16}) {
    for (auto [kind, neuron_norm] : std::vector<std::pair<SecondMomentKind, bool>>{{SecondMomentKind::kNone, false},
                                                                                   {SecondMomentKind::kFull, false},
                                                                                   {SecondMomentKind::kFactored, false},
                                                                                   {SecondMomentKind::kNone, true}}) {
      SCOPED_TRACE(to_string(kind) + (neuron_norm ? " NorMuon" : "") + (dtype == NsDtype::kFloat32 ? " fp32" : " bf16"));
      torch::manual_seed(13);
      torch::Tensor stack = leaf(torch::randn({experts, 8, 12}));
      torch::Tensor general = leaf(stack);
      std::vector<torch::Tensor> singles;
      for (int64_t e = 0; e < experts; ++e) singles.push_back(leaf(stack[e]));
      torch::manual_seed(17);
      std::vector<torch::Tensor> grads;
      for (int t = 0; t < 3; ++t) grads.push_back(torch::randn(stack.sizes()));

      Muon fused(std::vector<TaggedParam>{{"experts.w1", stack, ParamRole::kExpert}}, options(kind, neuron_norm, dtype));
      run_steps(fused, stack, grads);
      Muon unfused(std::vector<TaggedParam>{{"experts.w1", general, ParamRole::kExpert}},
                   options(kind, neuron_norm, dtype).fused(false));
      run_steps(unfused, general, grads);
      // Rounding tells the paths apart, so the fused one did run. In fp32
      // they agree to 1e-5; bf16 NS on a matrix this small differs by a few
      // percent of the move whether it stands alone or not
      // (FusedMuonStep.Bf16NewtonSchulzAgreesWithTheGeneralPath bounds that).
      EXPECT_FALSE(torch::equal(stack, general));
      if (dtype == NsDtype::kFloat32) EXPECT_TENSOR_NEAR(stack, general, 1e-5);
      for (int64_t e = 0; e < experts; ++e) {
        Muon single(std::vector<torch::Tensor>{singles[e]}, options(kind, neuron_norm, dtype));
        std::vector<torch::Tensor> expert_grads;
        for (const auto& g : grads) expert_grads.push_back(g[e]);
        run_steps(single, singles[e], expert_grads);
        EXPECT_TRUE(torch::equal(stack[e], singles[e])) << "expert " << e;
      }
    }
  }
}

TEST(MuonNdParams, FactoredStateIsPerMatrixOfTheStack) {
  torch::Tensor stack = leaf(torch::randn({3, 4, 6}, torch::kFloat64));
  Muon muon(std::vector<torch::Tensor>{stack},
            fp64_options(SecondMomentKind::kFactored).nd_params(NdParams::kBatch));
  stack.mutable_grad() = torch::randn_like(stack);
  muon.step();
  torch::serialize::OutputArchive archive;
  muon.save(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  // The state's shapes show through a load into a fresh optimizer.
  torch::Tensor same = leaf(stack);
  Muon loaded(std::vector<torch::Tensor>{same}, fp64_options(SecondMomentKind::kFactored).nd_params(NdParams::kBatch));
  std::istringstream in(bytes.str());
  torch::serialize::InputArchive input;
  input.load_from(in);
  EXPECT_NO_THROW(loaded.load(input));
  auto& state = loaded.visitable_state(same);
  struct Shapes : ParamStateVisitor {
    std::map<std::string, std::vector<int64_t>> seen;
    void tensor(const std::string& key, torch::Tensor& value) override { seen[key] = value.sizes().vec(); }
    void integer(const std::string&, int64_t&) override {}
  } shapes;
  state.visit(shapes);
  EXPECT_EQ(shapes.seen["second_moment_row"], (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(shapes.seen["second_moment_col"], (std::vector<int64_t>{3, 6}));
}

TEST(MuonNdParams, ExpertRoleBatchesUnderAuto) {
  torch::Tensor stack = leaf(torch::randn({2, 4, 4}, torch::kFloat64));
  torch::Tensor single = leaf(stack[1]);
  std::vector<TaggedParam> tagged{{"moe.experts.w1", stack, ParamRole::kExpert}};
  Muon muon(tagged, fp64_options());
  Muon reference(std::vector<torch::Tensor>{single}, fp64_options());
  const auto grads = random_grads(stack.sizes(), 2, 11);
  run_steps(muon, stack, grads);
  std::vector<torch::Tensor> second;
  for (const auto& g : grads) second.push_back(g[1]);
  run_steps(reference, single, second);
  EXPECT_TRUE(torch::allclose(stack[1], single, 1e-12, 1e-12));
}

TEST(MuonNdParams, AmbiguousOrRefusedShapesNamed) {
  torch::OrderedDict<std::string, torch::Tensor> conv1d;
  conv1d.insert("encoder.conv1.weight", torch::randn({8, 4, 3}));
  EXPECT_CONTAINS(error_message([&] { Muon muon(conv1d); }),
                  "parameter 'encoder.conv1.weight' has shape [8, 4, 3]: a 3-D tensor may be a Conv1d kernel");
  EXPECT_CONTAINS(error_message([&] { Muon muon(conv1d); }), "nd_params = \"batch\"");

  torch::OrderedDict<std::string, torch::Tensor> conv2d;
  conv2d.insert("stem.weight", torch::randn({8, 3, 3, 3}));
  EXPECT_CONTAINS(error_message([&] { Muon muon(conv2d, MuonOptions().nd_params(NdParams::kRefuse)); }),
                  "parameter 'stem.weight' cannot be optimized by Muon: it has shape [8, 3, 3, 3] and nd_params = "
                  "\"refuse\" takes 2-D matrices only (\"flatten\" reads it as 8 x 27");
  EXPECT_NO_THROW(Muon(conv2d, MuonOptions().nd_params(NdParams::kFlatten)));
  EXPECT_CONTAINS(error_message([] { parse_nd_params("stack"); }),
                  "unknown nd_params 'stack': expected auto, flatten, batch or refuse");
}

}  // namespace
}  // namespace muonlab::optim
