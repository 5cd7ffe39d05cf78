#include "muonlab/core/allocator_settings.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "muonlab/core/code_location.h"

namespace muonlab {

std::string allocator_name() {
  if (dlsym(RTLD_DEFAULT, "tc_malloc") != nullptr) return "tcmalloc";
#if defined(__GLIBC__)
  return "glibc";
#else
  return "unknown";
#endif
}

std::string allocator_library() {
  const void* tc_malloc = dlsym(RTLD_DEFAULT, "tc_malloc");
  return tc_malloc == nullptr ? "" : file_holding(tc_malloc).string();
}

std::string keep_freed_memory_for_reuse() {
  const std::string name = allocator_name();
  if (name != "glibc") return name;
#if defined(__GLIBC__)
  if (const char* choice = std::getenv("MUONLAB_MALLOC"); choice && std::strcmp(choice, "system") == 0) {
    return "glibc, left to the system (MUONLAB_MALLOC=system)";
  }
  if (const char* tunables = std::getenv("GLIBC_TUNABLES"); tunables && std::strstr(tunables, "glibc.malloc.")) {
    return "glibc, left to GLIBC_TUNABLES";
  }
  mallopt(M_MMAP_MAX, 0);                 // every block from the heap, reused after free
  mallopt(M_TRIM_THRESHOLD, 0x7fffffff);  // the largest value mallopt takes: never give the heap back mid-run
#endif
  return "glibc, freed memory kept for reuse";
}

}  // namespace muonlab
