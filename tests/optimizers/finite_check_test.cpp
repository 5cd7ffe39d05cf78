// cpu_all_finite against LibTorch's isfinite(t).all(), the definition it
// replaces, for every floating dtype it reads by bits: inf, -inf and NaN at
// the first, a middle and the last element of tensors spanning several
// parallel chunks, the largest finite values, subnormals and negative zero
// (finite), and the layouts that fall back.
#include "muonlab/optimizers/finite_check.h"

#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "test_util.h"

namespace muonlab::optim {
namespace {

bool reference(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

// The largest finite value and the smallest positive normal one of `dtype`.
template <typename T>
std::pair<double, double> limits_of() {
  return {static_cast<double>(std::numeric_limits<T>::max()), static_cast<double>(std::numeric_limits<T>::min())};
}

std::pair<double, double> finite_limits(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32: return limits_of<float>();
    case torch::kFloat64: return limits_of<double>();
    case torch::kBFloat16: return limits_of<c10::BFloat16>();
    case torch::kFloat16: return limits_of<c10::Half>();
    default: throw std::invalid_argument("no limits for this dtype");
  }
}

class FiniteCheck : public ::testing::TestWithParam<torch::Dtype> {};

TEST_P(FiniteCheck, AgreesWithIsfiniteForEveryPlacement) {
  const auto dtype = GetParam();
  const int64_t n = 3 * (1 << 16) + 17;  // several chunks and a ragged tail
  torch::manual_seed(0);
  const auto base = (torch::randn({n}, torch::kFloat64) * 100).to(dtype);
  ASSERT_TRUE(cpu_all_finite(base));
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const double bad : {inf, -inf, nan}) {
    for (const int64_t at : {int64_t{0}, n / 2, (int64_t{1} << 16), n - 1}) {
      auto t = base.clone();
      t[at] = bad;
      EXPECT_EQ(cpu_all_finite(t), reference(t)) << "value " << bad << " at " << at;
      EXPECT_FALSE(cpu_all_finite(t)) << "value " << bad << " at " << at;
    }
  }
  // Finite edge values: the largest magnitude, the smallest subnormal, -0.
  auto edges = base.clone();
  const auto [largest, smallest_normal] = finite_limits(dtype);
  edges[1] = largest;
  edges[2] = -largest;
  edges[3] = smallest_normal / 4;
  edges[4] = -0.0;
  EXPECT_TRUE(cpu_all_finite(edges));
  EXPECT_EQ(cpu_all_finite(edges), reference(edges));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FiniteCheck,
                         ::testing::Values(torch::kFloat32, torch::kFloat64, torch::kBFloat16, torch::kFloat16),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

TEST(FiniteCheckLayouts, NonContiguousEmptyAndIntegerTensors) {
  auto matrix = torch::randn({64, 48});
  matrix[5][40] = std::numeric_limits<float>::infinity();
  const auto transposed = matrix.t();
  ASSERT_FALSE(transposed.is_contiguous());
  EXPECT_FALSE(cpu_all_finite(transposed));
  EXPECT_TRUE(cpu_all_finite(matrix.narrow(1, 0, 40)));  // the inf is outside this view
  EXPECT_TRUE(cpu_all_finite(torch::empty({0})));
  EXPECT_TRUE(cpu_all_finite(torch::arange(10)));
}

// first_nonfinite names the first tensor holding an inf or NaN, skipping
// undefined ones, whichever device each tensor is on.
void expect_first_nonfinite_finds_each_bad_tensor(const torch::Device& device) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<torch::Tensor> tensors = {torch::randn({8, 4}), torch::Tensor(), torch::randn({3}).to(torch::kBFloat16),
                                        torch::randn({70000}), torch::randn({5, 5}).t()};
  for (auto& t : tensors) {
    if (t.defined()) t = t.to(device);
  }
  EXPECT_FALSE(first_nonfinite(tensors).has_value());
  EXPECT_FALSE(first_nonfinite({}).has_value());
  for (const size_t bad : {size_t{0}, size_t{2}, size_t{3}, size_t{4}}) {
    for (const double value : {nan, -inf}) {
      auto copies = tensors;
      copies[bad] = copies[bad].clone();
      auto last = copies[bad];  // the last element, through the tensor's own strides
      while (last.dim() > 0) last = last[last.size(0) - 1];
      last.fill_(value);
      // A later bad tensor does not hide the earlier one.
      if (bad < 4) copies[4] = torch::full({2, 2}, nan, copies[4].options());
      const auto found = first_nonfinite(copies);
      ASSERT_TRUE(found.has_value()) << "bad tensor " << bad;
      EXPECT_EQ(*found, bad) << "value " << value;
    }
  }
}

TEST(FirstNonfinite, FindsTheFirstBadCpuTensor) { expect_first_nonfinite_finds_each_bad_tensor(torch::kCPU); }

TEST(FirstNonfiniteOnCuda, FindsTheFirstBadCudaTensor) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  expect_first_nonfinite_finds_each_bad_tensor(torch::kCUDA);
}

}  // namespace
}  // namespace muonlab::optim
