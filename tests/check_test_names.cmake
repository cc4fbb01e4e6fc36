# SPDX-License-Identifier: Apache-2.0
# CTest splits discovered test names on ';': a test case named with one
# would silently never run. Fails when a Catch2 binary has such a name.
# Usage: cmake -DBINARIES="a;b" -P check_test_names.cmake
foreach(binary IN LISTS BINARIES)
  execute_process(COMMAND ${binary} --list-test-names-only OUTPUT_VARIABLE names
                  RESULT_VARIABLE code)
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "${binary} --list-test-names-only failed: ${code}")
  endif()
  string(FIND "${names}" ";" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "${binary}: a test case name contains ';' (CTest would not run "
                        "it):\n${names}")
  endif()
endforeach()
