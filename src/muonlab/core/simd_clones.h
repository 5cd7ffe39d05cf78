// Runtime dispatch of hot elementwise loops to AVX2 and AVX-512 code.
// The library is compiled for baseline x86-64 (SSE2) so that one build runs
// on every x86-64 CPU, and at that level GCC vectorizes a float -> bf16
// store or a 64-bit compare only narrowly. MUONLAB_SIMD_CLONES on a
// function makes GCC compile it once per level (x86-64-v4: AVX-512;
// x86-64-v3: AVX2 and FMA; the baseline) and pick one when the library is
// loaded, by what the CPU has (an ifunc). Elsewhere it expands to nothing.
// Only for leaf loops whose result does not depend on the vector width
// (integer work, or float sums kept in fixed lanes).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define MUONLAB_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MUONLAB_SIMD_CLONES
#endif
