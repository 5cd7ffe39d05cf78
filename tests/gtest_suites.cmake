# Writes CTEST_FILE: one CTest entry per GoogleTest suite of TEST_EXECUTABLE,
# each running the suite's tests in one process (--gtest_filter=Suite.*).
# Run after each build of the executable (tests/CMakeLists.txt), as CMake's
# gtest_discover_tests is, which makes one entry, and one process, per test.
# LibTorch takes about 0.7 s to start a process: run per test, that start-up
# was over half of CTest's time.
#
#   cmake -D TEST_EXECUTABLE=... -D CTEST_FILE=... -D WORKING_DIRECTORY=...
#         -D SUITE_TIMEOUT=seconds [-D SUITE_ENVIRONMENT=NAME=value,...]
#         [-D SUITE_COSTS=Suite=seconds,...] -P gtest_suites.cmake
#
# SUITE_ENVIRONMENT: variables every suite runs with (CTest's ENVIRONMENT).
# SUITE_COSTS: the CTest COST of the long suites, so that a fresh build
# (no timings of CTest's own yet) starts them first. A name that is not a
# suite fails, so the list cannot go stale unseen.
cmake_minimum_required(VERSION 3.18)  # as the project; if(IN_LIST) needs 3.3
execute_process(COMMAND "${TEST_EXECUTABLE}" --gtest_list_tests
                WORKING_DIRECTORY "${WORKING_DIRECTORY}" TIMEOUT 120
                RESULT_VARIABLE status OUTPUT_VARIABLE listing ERROR_VARIABLE errors)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${TEST_EXECUTABLE} --gtest_list_tests failed (${status}): ${errors}")
endif()

string(REPLACE "," ";" environment "${SUITE_ENVIRONMENT}")
set(environment_property "")
if(environment)
  set(environment_property " ENVIRONMENT [=[${environment}]=]")
endif()

string(REPLACE "," ";" costs "${SUITE_COSTS}")
set(costed_suites "")
foreach(entry IN LISTS costs)
  if(NOT entry MATCHES "^(.+)=([0-9.]+)$")
    message(FATAL_ERROR "SUITE_COSTS: '${entry}' is not Suite=seconds")
  endif()
  set("cost_of_${CMAKE_MATCH_1}" "${CMAKE_MATCH_2}")
  list(APPEND costed_suites "${CMAKE_MATCH_1}")
endforeach()

# Suite lines start in the first column ("Suite." or "Prefix/Suite/0.  #
# TypeParam = ..."); the tests under them are indented.
string(REPLACE ";" "\\;" listing "${listing}")
string(REPLACE "\n" ";" lines "${listing}")
set(content "")
set(suites "")
foreach(line IN LISTS lines)
  if(line STREQUAL "" OR line MATCHES "^ ")
    continue()  # a test of the suite above
  endif()
  # A suite line this does not read would drop the suite's tests unseen.
  if(NOT line MATCHES "^([^ #][^ ]*)\\.( .*)?$")
    message(FATAL_ERROR "${TEST_EXECUTABLE} --gtest_list_tests: cannot read the suite line '${line}'")
  endif()
  set(suite "${CMAKE_MATCH_1}")
  list(APPEND suites "${suite}")
  set(cost "")
  if(DEFINED "cost_of_${suite}")
    set(cost " COST ${cost_of_${suite}}")
  endif()
  string(APPEND content
         "add_test([=[${suite}]=] [=[${TEST_EXECUTABLE}]=] [=[--gtest_filter=${suite}.*]=])\n"
         "set_tests_properties([=[${suite}]=] PROPERTIES WORKING_DIRECTORY [=[${WORKING_DIRECTORY}]=]"
         " TIMEOUT ${SUITE_TIMEOUT} SKIP_RETURN_CODE 77${environment_property}${cost})\n")
endforeach()
if(NOT suites)
  message(FATAL_ERROR "${TEST_EXECUTABLE} --gtest_list_tests listed no test suite")
endif()
foreach(suite IN LISTS costed_suites)
  if(NOT suite IN_LIST suites)
    message(FATAL_ERROR "SUITE_COSTS names '${suite}', which ${TEST_EXECUTABLE} does not have")
  endif()
endforeach()
file(WRITE "${CTEST_FILE}" "${content}")
