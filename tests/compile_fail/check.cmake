# SPDX-License-Identifier: Apache-2.0
# Compiles SOURCE and passes when compilation fails with the message given on
# the source's "// expect: ..." line.
file(STRINGS "${SOURCE}" expect_line REGEX "^// expect: ")
string(REGEX REPLACE "^// expect: " "" expected "${expect_line}")
execute_process(
  COMMAND ${CXX} -std=c++20 -fsyntax-only -I${INCLUDE} ${SOURCE}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
string(FIND "${out}" "${expected}" found)
if(found EQUAL -1)
  message(FATAL_ERROR "${SOURCE}: compiler output lacks \"${expected}\":\n${out}")
endif()
message(STATUS "fails to compile with: ${expected}")
