// CudaGraph: a replay runs the captured kernels again on whatever the
// captured memory holds then, and nothing runs at capture. Without CUDA
// graphs in the build, every use fails naming what is missing.
#include "muonlab/core/cuda_graph.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace muonlab {
namespace {

TEST(CudaGraph, WithoutCudaGraphsInTheBuildSaysWhatIsMissing) {
  if (cuda_graphs_built()) GTEST_SKIP() << "this build has CUDA graphs";
  CudaGraph graph;
  const auto device = torch::Device(torch::kCUDA);
  EXPECT_CONTAINS(testing::error_message([&] { graph.capture([] {}, device); }),
                  "CUDA graphs need muonlab built with CUDA (against a CUDA build of LibTorch");
  EXPECT_FALSE(graph.captured());
}

TEST(CudaGraphOnCuda, ReplaysTheCapturedWorkOnNewInputs) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  ASSERT_TRUE(cuda_graphs_built());
  const auto device = torch::Device(torch::kCUDA);
  const auto x = torch::full({1000}, 1.0f, torch::device(device));
  torch::Tensor y;  // made inside the capture: lives in the graph's pool
  const auto work = [&] { y = x * 2 + 1; };
  CudaGraph graph;
  graph.warm_up(work, device);
  EXPECT_TRUE(torch::equal(y.cpu(), torch::full({1000}, 3.0f)));

  graph.capture(work, device);
  ASSERT_TRUE(graph.captured());
  x.fill_(5);
  graph.replay();
  EXPECT_TRUE(torch::equal(y.cpu(), torch::full({1000}, 11.0f)));
  x.fill_(-1);
  graph.replay();
  EXPECT_TRUE(torch::equal(y.cpu(), torch::full({1000}, -1.0f)));
}

// A host read is not allowed while capturing: the capture is abandoned, the
// error comes through, and the stream runs ordinary work afterwards.
TEST(CudaGraphOnCuda, AHostReadAbandonsTheCapture) {
  MUONLAB_SKIP_WITHOUT_CUDA();
  const auto device = torch::Device(torch::kCUDA);
  const auto x = torch::ones({10}, torch::device(device));
  CudaGraph graph;
  graph.warm_up([&] { (void)x.sum().item<float>(); }, device);
  EXPECT_THROW(graph.capture([&] { (void)x.sum().item<float>(); }, device), std::exception);
  EXPECT_FALSE(graph.captured());
  EXPECT_EQ((x * 3).sum().item<float>(), 30.0f);
}

}  // namespace
}  // namespace muonlab
