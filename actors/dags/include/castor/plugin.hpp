// SPDX-License-Identifier: Apache-2.0
#pragma once

// Everything a DAG author needs, and the entry point of a plugin the stock
// `castor` binary loads (`engine.plugins = ["path/libx.so"]`):
//
//     #include <castor/plugin.hpp>
//
//     CASTOR_PLUGIN(registry) {
//       registry.add("vwap", make_vwap);
//     }
//
// Build it with `castor_add_plugin(NAME SOURCES...)` from castor's CMake
// package: the plugin is linked against none of castor's libraries (their
// code and globals are the binary's: one copy in the process). The entry
// point is a C symbol that carries castor's version and ABI; castor refuses a
// plugin built against another castor, compiler ABI or CAF, naming the file
// and both sides.

#include "castor/build_info.hpp"
#include "castor/dag.hpp"
#include "castor/json.hpp"
#include "castor/pipeline.hpp"
#include "castor/record.hpp"
#include "castor/registry.hpp"
#include "castor/serde.hpp"
#include "castor/time.hpp"

#include <caf/config.hpp>

#include <cstdint>

#define CASTOR_PLUGIN_STR2(x) #x
#define CASTOR_PLUGIN_STR(x) CASTOR_PLUGIN_STR2(x)

/// What must match between castor and a plugin: castor's version, the C++
/// ABI of the compiler and standard library, and CAF's version.
#define CASTOR_PLUGIN_ABI                                                                \
  "castor " CASTOR_VERSION                                                               \
  "; gxx-abi " CASTOR_PLUGIN_STR(__GXX_ABI_VERSION) "; cxx11-abi " CASTOR_PLUGIN_STR(    \
      _GLIBCXX_USE_CXX11_ABI) "; caf " CASTOR_PLUGIN_STR(CAF_VERSION)

/// The name of a plugin's entry point.
#define CASTOR_PLUGIN_ENTRY "castor_plugin_v1"

/// Marks a castor plugin's information block ("castor plugin").
inline constexpr uint32_t castor_plugin_magic = 0xCA5701A1;

extern "C" {

/// A plugin's information block, returned by its entry point.
struct castor_plugin_info {
  uint32_t magic;
  uint32_t size; // sizeof(castor_plugin_info)
  const char* castor_version;
  const char* abi;
  void (*register_dags)(castor::registry&);
};

using castor_plugin_entry = const castor_plugin_info* (*)();
}

/// Defines a plugin's entry point; the block that follows registers its DAGs
/// with `NAME` (a `castor::registry&`). It may throw: castor then reports a
/// configuration error naming the plugin.
#define CASTOR_PLUGIN(NAME)                                                              \
  static void castor_plugin_register_(::castor::registry&);                              \
  extern "C" __attribute__((visibility("default"))) const ::castor_plugin_info*          \
  castor_plugin_v1() {                                                                   \
    static const ::castor_plugin_info info{::castor_plugin_magic,                        \
                                           sizeof(::castor_plugin_info), CASTOR_VERSION, \
                                           CASTOR_PLUGIN_ABI, &castor_plugin_register_}; \
    return &info;                                                                        \
  }                                                                                      \
  static void castor_plugin_register_(::castor::registry& NAME)
