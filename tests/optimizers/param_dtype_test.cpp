// Parameters the optimizers cannot step correctly are refused by name:
// complex ones (cast to real, they would lose their imaginary part without a
// word), integers and bools, and float16 on a CPU whose LibTorch lacks the
// step's float16 kernels. Where it has them, a float16 step is the float32
// step rounded.
#include <gtest/gtest.h>

#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/muon.h"
#include "muonlab/optimizers/param_dtype.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

torch::OrderedDict<std::string, torch::Tensor> one_named(const torch::Tensor& param) {
  torch::OrderedDict<std::string, torch::Tensor> named;
  named.insert("h.0.attn.weight", param);
  return named;
}

TEST(ParamDtype, ComplexIntegerAndBoolParametersAreRefusedByName) {
  const std::vector<std::pair<torch::Dtype, std::string>> refused = {
      {torch::kComplexFloat, "is complex64: Muon steps real tensors; view a complex one as pairs of reals"},
      {torch::kInt64, "is int64: Muon steps floating-point tensors"},
      {torch::kBool, "is bool: Muon steps floating-point tensors"}};
  for (const auto& [dtype, expected] : refused) {
    const auto param = torch::ones({4, 4}, dtype);
    EXPECT_CONTAINS(testing::error_message([&] { Muon muon(one_named(param)); }), "'h.0.attn.weight' " + expected);
    std::string adamw_expected = expected;
    adamw_expected.replace(adamw_expected.find("Muon"), 4, "AdamW");
    EXPECT_CONTAINS(testing::error_message([&] { AdamW adamw(one_named(param)); }), adamw_expected);
  }
  for (const auto dtype : {torch::kFloat32, torch::kFloat64, torch::kBFloat16}) {
    EXPECT_NO_THROW(Muon(one_named(torch::ones({4, 4}, dtype))));
    EXPECT_NO_THROW(AdamW(one_named(torch::ones({4, 4}, dtype))));
  }
}

// Either refused, naming what to use instead, or stepped as float32 would,
// to float16's rounding: never LibTorch's "not implemented for 'Half'".
TEST(ParamDtype, Float16OnTheCpuIsRefusedOrSteppedAsFloat32) {
  torch::manual_seed(3);
  const auto start = torch::randn({8, 12});
  const auto grad = torch::randn({8, 12});
  auto stepped = [&](torch::Dtype dtype, bool muon) {
    auto param = start.to(dtype, /*non_blocking=*/false, /*copy=*/true).requires_grad_(true);
    param.mutable_grad() = grad.to(dtype);
    if (muon) {
      Muon optimizer(one_named(param), MuonOptions(0.5).weight_decay(0));
      optimizer.step();
    } else {
      AdamW optimizer(one_named(param), AdamWOptions(0.5).weight_decay(0));
      optimizer.step();
    }
    return param.detach().to(torch::kFloat32);
  };
  for (const bool muon : {true, false}) {
    SCOPED_TRACE(muon ? "Muon" : "AdamW");
    if (!cpu_has_float16_arithmetic()) {
      EXPECT_CONTAINS(testing::error_message([&] { stepped(torch::kHalf, muon); }),
                      "'h.0.attn.weight' is float16 on the CPU, where this LibTorch has no float16 kernels");
      continue;
    }
    const auto reference = stepped(torch::kFloat32, muon);
    ASSERT_GT((reference - start).abs().max().item<double>(), 0.1);
    EXPECT_LT((stepped(torch::kHalf, muon) - reference).abs().max().item<double>(), 0.02);
  }
}

}  // namespace
}  // namespace muonlab::optim
