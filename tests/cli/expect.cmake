# SPDX-License-Identifier: Apache-2.0
# Runs CMD (a ;-list) and passes when its exit code is CODE and its output
# (stdout + stderr) matches REGEX.
execute_process(COMMAND ${CMD} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out
                TIMEOUT 60)
if(NOT rc EQUAL CODE)
  message(FATAL_ERROR "exit code ${rc}, expected ${CODE}; output:\n${out}")
endif()
if(NOT out MATCHES "${REGEX}")
  message(FATAL_ERROR "output does not match \"${REGEX}\":\n${out}")
endif()
if(DEFINED NOT_REGEX AND out MATCHES "${NOT_REGEX}")
  message(FATAL_ERROR "output matches \"${NOT_REGEX}\":\n${out}")
endif()
