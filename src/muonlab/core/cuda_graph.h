// A CUDA graph of one piece of GPU work: captured once, then replayed with
// one launch instead of one per kernel. A replay reads and writes the memory
// the capture saw, at the same addresses, with the scalars the capture saw;
// work that reads a value back to the host (.item(), a copy to the CPU)
// cannot be captured. LibTorch's at::cuda::CUDAGraph underneath, driven as
// torch.cuda.graph drives it: warm-up and capture on a side stream, ordered
// after the work queued before them.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>

namespace muonlab {

// Whether this build can capture CUDA graphs: LibTorch built with CUDA
// (PyTorch's CUDA wheels; Debian's LibTorch is CPU-only).
bool cuda_graphs_built();

class CudaGraph {
 public:
  CudaGraph();
  ~CudaGraph();
  CudaGraph(CudaGraph&&) noexcept;
  CudaGraph& operator=(CudaGraph&&) noexcept;

  // Runs `work` for real on this graph's side stream of `device`, after the
  // work already queued on the current stream and before what is queued on
  // it next: lazy set-up (cuBLAS workspaces, the allocator's blocks) then
  // happens outside the capture, on the stream the capture will use.
  void warm_up(const std::function<void()>& work, const torch::Device& device);

  // Records one call of `work` on that stream; nothing runs until replay().
  // Tensors `work` creates live in the graph's memory pool, and every replay
  // writes them again. If `work` fails (an op that is not allowed while
  // capturing), the capture is abandoned and the error rethrown; nothing ran.
  // Fails on builds without CUDA graphs.
  void capture(const std::function<void()>& work, const torch::Device& device);

  // Runs the captured work on the current stream.
  void replay();

  bool captured() const;
  // Drops the graph and its memory pool (tensors that still hold its memory
  // keep it until they go).
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace muonlab
