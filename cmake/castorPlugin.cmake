# SPDX-License-Identifier: Apache-2.0
# castor_add_plugin(NAME SOURCES...): a castor plugin, lib<NAME>.so, that the
# stock castor binary loads with `engine.plugins = ["path/lib<NAME>.so"]`.
# It compiles against castor's headers and links none of castor's libraries:
# castor's code and globals are the binary's, one copy in the process. Its
# sources define the entry point with CASTOR_PLUGIN (castor/plugin.hpp).
function(castor_add_plugin name)
  if(NOT ARGN)
    message(FATAL_ERROR "castor_add_plugin(${name}): no sources")
  endif()
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE castor::plugin_api)
  set_target_properties(${name} PROPERTIES PREFIX "lib" CXX_VISIBILITY_PRESET default)
endfunction()
