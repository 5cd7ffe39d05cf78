# Runs one fuzz target for a bounded number of inputs, as a CTest test:
#   cmake -DFUZZER=<exe> -DSEEDS=<dir> -DWORK=<dir> -DARGS="<libFuzzer flags>" -P run_short.cmake
# The run starts from an empty scratch corpus in WORK (new inputs go there;
# SEEDS, the committed corpus, is only read) and writes any crashing input to
# WORK/artifacts/. Fails when the fuzzer finds a crash, leak, timeout or
# sanitizer report, i.e. exits nonzero.
foreach(var FUZZER SEEDS WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_short.cmake: -D${var}=... is required")
  endif()
endforeach()
separate_arguments(ARGS UNIX_COMMAND "${ARGS}")

file(REMOVE_RECURSE "${WORK}/corpus")
file(MAKE_DIRECTORY "${WORK}/corpus" "${WORK}/artifacts")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")

execute_process(
  COMMAND "${FUZZER}" ${ARGS} "-artifact_prefix=${WORK}/artifacts/" "${WORK}/corpus" "${SEEDS}"
  WORKING_DIRECTORY "${WORK}"
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${result}); any crashing input is in ${WORK}/artifacts/; "
                      "reproduce with: ${FUZZER} ${WORK}/artifacts/<file>")
endif()
