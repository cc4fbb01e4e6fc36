# SPDX-License-Identifier: Apache-2.0
# Fails when BINARY needs CAF or librdkafka at run time (ldd).
execute_process(COMMAND ldd ${BINARY} RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ldd ${BINARY} failed")
endif()
if(out MATCHES "libcaf|librdkafka")
  message(FATAL_ERROR "${BINARY} links CAF or librdkafka:\n${out}")
endif()
message(STATUS "${BINARY} links neither CAF nor librdkafka")
