# Fuzzing (fuzz/): libFuzzer + ASan + UBSan targets for the data layer's
# LibTorch-free parsers, built by clang++ as a project of their own into
# ${CMAKE_BINARY_DIR}/fuzz; with the tests, a short bounded run of each.
find_program(MUONLAB_FUZZ_CXX NAMES clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14
             DOC "clang++ that builds the fuzz targets")
if(NOT MUONLAB_FUZZ_CXX)
  set(_fuzz_why "no clang++ found (set MUONLAB_FUZZ_CXX)")
elseif(NOT MUONLAB_FUZZ_PROBED STREQUAL MUONLAB_FUZZ_CXX)
  set(_fuzz_probe_dir ${CMAKE_BINARY_DIR}/CMakeFiles/muonlab_fuzz_probe)
  file(WRITE ${_fuzz_probe_dir}/probe.cpp
       "#include <cstddef>\n#include <cstdint>\n"
       "extern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n")
  execute_process(
    COMMAND ${MUONLAB_FUZZ_CXX} -fsanitize=fuzzer,address,undefined probe.cpp -o probe
    WORKING_DIRECTORY ${_fuzz_probe_dir} RESULT_VARIABLE _fuzz_rc OUTPUT_VARIABLE _fuzz_out ERROR_VARIABLE _fuzz_out)
  if(_fuzz_rc EQUAL 0)
    set(_fuzz_why "")
    set(MUONLAB_FUZZ_PROBED ${MUONLAB_FUZZ_CXX} CACHE INTERNAL "clang++ that linked -fsanitize=fuzzer")
  else()
    string(REGEX REPLACE "\n.*" "" _fuzz_out "${_fuzz_out}")
    set(_fuzz_why "${MUONLAB_FUZZ_CXX} cannot link -fsanitize=fuzzer (needs clang with its libFuzzer runtime, Debian: libclang-rt-NN-dev): ${_fuzz_out}")
  endif()
else()
  set(_fuzz_why "")
endif()
if(_fuzz_why STREQUAL "")
  option(MUONLAB_FUZZ "Build the libFuzzer targets in fuzz/ (and test them briefly)" ON)
else()
  option(MUONLAB_FUZZ "Build the libFuzzer targets in fuzz/ (and test them briefly)" OFF)
  if(MUONLAB_FUZZ)
    message(FATAL_ERROR "MUONLAB_FUZZ is ON, but ${_fuzz_why}")
  endif()
  message(STATUS "muonlab: fuzz targets off: ${_fuzz_why}")
endif()
if(MUONLAB_FUZZ)
  include(ExternalProject)
  set(_fuzz_bin ${CMAKE_BINARY_DIR}/fuzz)
  # BUILD_ALWAYS: the sub-build's own dependency scan picks up edits to fuzz/
  # and to the data sources it compiles; a no-op run costs under a second.
  set(_fuzz_args -DCMAKE_CXX_COMPILER=${MUONLAB_FUZZ_CXX} -DMUONLAB_SOURCE_DIR=${PROJECT_SOURCE_DIR})
  if(CCACHE_PROGRAM)
    list(APPEND _fuzz_args -DCMAKE_CXX_COMPILER_LAUNCHER=${CCACHE_PROGRAM})
  endif()
  ExternalProject_Add(muonlab_fuzz
    SOURCE_DIR ${PROJECT_SOURCE_DIR}/fuzz
    BINARY_DIR ${_fuzz_bin}
    CMAKE_ARGS ${_fuzz_args}
    BUILD_ALWAYS ON
    INSTALL_COMMAND "")
  if(MUONLAB_BUILD_TESTS)
    foreach(_fuzz_case "shard_header;-runs=200000 -max_len=2048" "tokenizer;-runs=30000 -max_len=4096"
                       "parquet;-runs=40000 -max_len=4096")
      list(GET _fuzz_case 0 _fuzz_name)
      list(GET _fuzz_case 1 _fuzz_run_args)
      add_test(NAME fuzz.${_fuzz_name}_short_run
               COMMAND ${CMAKE_COMMAND} -DFUZZER=${_fuzz_bin}/fuzz_${_fuzz_name}
                       -DSEEDS=${PROJECT_SOURCE_DIR}/fuzz/corpus/${_fuzz_name}
                       -DWORK=${_fuzz_bin}/run/${_fuzz_name} "-DARGS=${_fuzz_run_args} -timeout=30"
                       -P ${PROJECT_SOURCE_DIR}/fuzz/run_short.cmake)
      # COST: about 30 s each on 2 cores, started first in a fresh build (tests/CMakeLists.txt).
      set_tests_properties(fuzz.${_fuzz_name}_short_run PROPERTIES TIMEOUT 180 LABELS fuzz COST 30)
    endforeach()
    # Without data/gpt2 (scripts/fetch-data) the GPT-2 tokenizer cannot load.
    set_tests_properties(fuzz.tokenizer_short_run PROPERTIES
      SKIP_REGULAR_EXPRESSION "cannot load the GPT-2 tokenizer")
  endif()
endif()
