#include "muonlab/core/cuda_graph.h"

#include <optional>

#include "muonlab/core/errors.h"
#include "muonlab/core/torch_compat.h"

#if defined(MUONLAB_TORCH_CUDA) && __has_include(<ATen/cuda/CUDAGraph.h>)
#define MUONLAB_CUDA_GRAPHS 1
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace muonlab {

#ifdef MUONLAB_CUDA_GRAPHS

namespace {

// `waiting` runs what is queued on it next only after what is queued on
// `done` so far.
void order_after(const c10::cuda::CUDAStream& waiting, const c10::cuda::CUDAStream& done) {
  at::cuda::CUDAEvent event;
  event.record(done);
  event.block(waiting);
}

}  // namespace

struct CudaGraph::Impl {
  std::optional<c10::cuda::CUDAStream> side;
  std::unique_ptr<at::cuda::CUDAGraph> graph;

  // One stream per graph, taken once: warm-up and capture must share it.
  c10::cuda::CUDAStream side_stream(c10::DeviceIndex index) {
    if (!side || side->device_index() != index) side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index);
    return *side;
  }

  // Runs `work` on the side stream between the current stream's work before
  // and after it.
  void on_side_stream(const std::function<void()>& work, const torch::Device& device) {
    if (!device.is_cuda()) fail("a CUDA graph needs a CUDA device, got {}", device.str());
    const c10::DeviceIndex index = device.has_index() ? device.index() : c10::cuda::current_device();
    const c10::cuda::CUDAStream stream = side_stream(index);
    const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(index);
    order_after(stream, current);
    try {
      c10::cuda::CUDAStreamGuard guard(stream);
      work();
    } catch (...) {
      order_after(current, stream);  // whatever `work` queued before it failed
      throw;
    }
    order_after(current, stream);
  }
};

bool cuda_graphs_built() { return true; }

void CudaGraph::warm_up(const std::function<void()>& work, const torch::Device& device) {
  impl_->on_side_stream(work, device);
}

void CudaGraph::capture(const std::function<void()>& work, const torch::Device& device) {
  reset();
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  impl_->on_side_stream(
      [&] {
        graph->capture_begin();
        try {
          work();
        } catch (...) {
          // Ends the (invalidated) capture so the stream can run work again.
          // LibTorch may leave that stream's allocations routed to the dead
          // capture's pool, so later work takes another stream.
          try {
            graph->capture_end();
          } catch (...) {
          }
          impl_->side.reset();
          throw;
        }
        graph->capture_end();
      },
      device);
  impl_->graph = std::move(graph);
}

void CudaGraph::replay() {
  if (!impl_->graph) fail("CudaGraph::replay: nothing was captured");
  impl_->graph->replay();
}

bool CudaGraph::captured() const { return impl_->graph != nullptr; }

void CudaGraph::reset() { impl_->graph.reset(); }

#else

struct CudaGraph::Impl {};

bool cuda_graphs_built() { return false; }

namespace {

[[noreturn]] void fail_without_cuda_graphs() {
  fail("CUDA graphs need muonlab built with CUDA (against a CUDA build of LibTorch, with the CUDA runtime's "
       "headers); this build has none (LibTorch {})",
       compat::torch_version());
}

}  // namespace

void CudaGraph::warm_up(const std::function<void()>&, const torch::Device&) { fail_without_cuda_graphs(); }
void CudaGraph::capture(const std::function<void()>&, const torch::Device&) { fail_without_cuda_graphs(); }
void CudaGraph::replay() { fail_without_cuda_graphs(); }
bool CudaGraph::captured() const { return false; }
void CudaGraph::reset() {}

#endif

CudaGraph::CudaGraph() : impl_(std::make_unique<Impl>()) {}
CudaGraph::~CudaGraph() = default;
CudaGraph::CudaGraph(CudaGraph&&) noexcept = default;
CudaGraph& CudaGraph::operator=(CudaGraph&&) noexcept = default;

}  // namespace muonlab
