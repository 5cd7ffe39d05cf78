// Which OpenMP runtime muonlab's parallel loops run on, and whether it is the
// one LibTorch's own loops and matmuls run on.
//
// muonlab's CPU passes split their work with at::parallel_for, an inline
// template that compiles to calls into whichever OpenMP runtime this code was
// linked against. PyTorch's wheels bundle a private copy of libgomp; code
// built with plain -fopenmp links the system's. With both loaded, each keeps
// its own thread pool and its threads spin while the other's run: the Muon
// step from Python took 1.25-1.3x as long with two libgomp copies and
// 1.6-2.2x with LLVM's libomp beside LibTorch's libgomp (docs/benchmarks.md),
// and torch.set_num_threads no longer reached muonlab's loops.
#pragma once

#include <string>

namespace muonlab {

struct OpenMpRuntime {
  std::string library;      // the file this code's OpenMP calls resolve to; empty if unknown or none
  bool shared_with_torch;   // whether at::set_num_threads sets this runtime's thread count
};

// Probes by setting LibTorch's thread count to one more than it is, reading
// this runtime's back, and restoring it: call it once, not in a hot loop.
// Where LibTorch parallelizes without OpenMP (its native thread pool),
// returns no library, shared, without probing.
OpenMpRuntime openmp_runtime();

// Whether at::set_num_threads reaches the runtime whose omp_get_max_threads
// is given (the probe behind openmp_runtime().shared_with_torch).
bool torch_sets_thread_count_of(int (*runtime_max_threads)());

// One line for reports: the library and whether it is LibTorch's.
std::string describe(const OpenMpRuntime& runtime);

}  // namespace muonlab
