// The allocator of a process that allocates and frees the same large
// tensors every training step.
//
// By default glibc serves every allocation above 32 MiB (the largest mmap
// threshold it allows), and smaller ones once its dynamic threshold says so,
// with a fresh mmap, unmapped again on free; and tensors freed below a live
// small object stay fragments the next, slightly larger, aligned request
// cannot use, so the heap grows instead. Either way the kernel zero-fills
// the step's activations and logits (8 x 128 tokens x 50,257 logits is
// 206 MB) page by page on every step: measured on the main job's model on a
// 2-core EPYC, 220 thousand minor page faults and a third of the step in the
// kernel (docs/benchmarks.md). The muonlab executable therefore links
// tcmalloc (CMake option MUONLAB_TCMALLOC), which keeps freed spans for
// reuse; without it, glibc is told to keep freed memory, which removes most
// but not all of the faults.
#pragma once

#include <string>

namespace muonlab {

// The allocator in force: "tcmalloc" when it replaced malloc, else glibc's
// ("glibc") or another ("unknown").
std::string allocator_name();

// The file of the tcmalloc in force (to give a child process the same
// allocator through LD_PRELOAD); "" under any other allocator.
std::string allocator_library();

// Under glibc: turns mmap-backed allocations off and heap trimming to its
// largest threshold, unless the environment chose malloc settings
// (GLIBC_TUNABLES naming glibc.malloc.*, or MUONLAB_MALLOC=system to keep
// glibc's defaults). Returns what it did, for diagnostics: "tcmalloc",
// "glibc, freed memory kept for reuse", "glibc, left to GLIBC_TUNABLES",
// "glibc, left to the system (MUONLAB_MALLOC=system)", or "unknown".
std::string keep_freed_memory_for_reuse();

}  // namespace muonlab
