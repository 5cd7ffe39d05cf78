// MFU's denominator: datasheet peaks by device name and dtype; unknown
// devices (CPUs) have none. And CUDA autocast's guard restores the
// thread-local state it changed (checked on CPU builds too: the flag is
// LibTorch's, not the GPU's).
#include <gtest/gtest.h>

#include "muonlab/core/device_peak_flops.h"
#include "muonlab/core/torch_compat.h"

namespace muonlab {
namespace {

TEST(PeakFlops, DatasheetValuesByNameAndDtype) {
  EXPECT_DOUBLE_EQ(*peak_flops("NVIDIA H100 80GB HBM3", torch::kBFloat16), 989.4e12);
  EXPECT_DOUBLE_EQ(*peak_flops("NVIDIA H100 PCIe", torch::kBFloat16), 756e12);  // not the SXM entry
  EXPECT_DOUBLE_EQ(*peak_flops("NVIDIA H200", torch::kFloat32), 66.9e12);
  EXPECT_DOUBLE_EQ(*peak_flops("NVIDIA A100-SXM4-80GB", torch::kBFloat16), 312e12);
  EXPECT_FALSE(peak_flops("cpu", torch::kFloat32).has_value());
  EXPECT_FALSE(peak_flops("NVIDIA GeForce GTX 1080", torch::kBFloat16).has_value());
  EXPECT_EQ(device_name(torch::Device("cpu")), "cpu");
}

TEST(Autocast, EnablesForItsScopeAndRestoresOnEachDevice) {
  for (const bool cuda : {false, true}) {
    const torch::Device device = cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
    ASSERT_FALSE(compat::Autocast::is_enabled(cuda));
    {
      compat::Autocast outer(device, true, torch::kBFloat16);
      EXPECT_TRUE(compat::Autocast::is_enabled(cuda));
      EXPECT_FALSE(compat::Autocast::is_enabled(!cuda));  // the other device's switch is untouched
      {
        compat::Autocast inner(device, false, torch::kBFloat16);
        EXPECT_FALSE(compat::Autocast::is_enabled(cuda));
      }
      EXPECT_TRUE(compat::Autocast::is_enabled(cuda));
    }
    EXPECT_FALSE(compat::Autocast::is_enabled(cuda));
  }
}

TEST(Autocast, CpuMatmulsRunInBf16AndFp32WeightsStay) {
  const auto weight = torch::randn({8, 8});
  const auto x = torch::randn({4, 8});
  torch::Tensor y;
  {
    compat::Autocast autocast(torch::kCPU, true, torch::kBFloat16);
    y = torch::matmul(x, weight);
  }
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(weight.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::allclose(y.to(torch::kFloat32), torch::matmul(x, weight), 0.02, 0.05));
  EXPECT_EQ(torch::matmul(x, weight).scalar_type(), torch::kFloat32);  // off again after the scope
}

}  // namespace
}  // namespace muonlab
