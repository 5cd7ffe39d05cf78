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

TEST(CudaAutocast, EnablesForItsScopeAndRestores) {
  ASSERT_FALSE(compat::CudaAutocast::enabled());
  {
    compat::CudaAutocast outer(true, torch::kBFloat16);
    EXPECT_TRUE(compat::CudaAutocast::enabled());
    {
      compat::CudaAutocast inner(false, torch::kBFloat16);
      EXPECT_FALSE(compat::CudaAutocast::enabled());
    }
    EXPECT_TRUE(compat::CudaAutocast::enabled());
  }
  EXPECT_FALSE(compat::CudaAutocast::enabled());
}

}  // namespace
}  // namespace muonlab
