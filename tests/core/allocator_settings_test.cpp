// glibc's fallback settings keep freed memory for reuse: a large block
// allocated, written and freed again and again comes back from the heap
// instead of as fresh kernel pages each time. (The muonlab executable links
// tcmalloc instead; `cli.version_allocator_is_tcmalloc` checks that.)
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>

#include "muonlab/core/allocator_settings.h"

namespace muonlab {
namespace {

long minor_faults_so_far() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

void* volatile keep_alive;  // the compiler may not elide malloc, memset and free

// Faults taken by `rounds` malloc-write-free rounds of a 64 MiB block.
long faults_of_reallocation(int rounds) {
  constexpr size_t kBytes = 64 << 20;
  const long before = minor_faults_so_far();
  for (int i = 0; i < rounds; ++i) {
    keep_alive = std::malloc(kBytes);
    std::memset(keep_alive, 1, kBytes);
    std::free(keep_alive);
  }
  return minor_faults_so_far() - before;
}

TEST(AllocatorSettings, LargeBlocksAreReusedInsteadOfFaultedInAgain) {
  if (allocator_name() != "glibc") GTEST_SKIP() << "the glibc fallback only; this process uses " << allocator_name();
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (std::getenv("MUONLAB_MALLOC") || (tunables && std::strstr(tunables, "glibc.malloc."))) {
    GTEST_SKIP() << "malloc settings chosen by the environment";
  }
  constexpr long kPagesPerBlock = (64L << 20) / 4096;
  constexpr int kRounds = 5;
  // glibc's default: above 32 MiB every block is a fresh mapping.
  EXPECT_GT(faults_of_reallocation(kRounds), kRounds * kPagesPerBlock / 2);

  EXPECT_EQ(keep_freed_memory_for_reuse(), "glibc, freed memory kept for reuse");
  faults_of_reallocation(1);  // the heap grows once
  EXPECT_LT(faults_of_reallocation(kRounds), kPagesPerBlock / 10);
}

}  // namespace
}  // namespace muonlab
