// SPDX-License-Identifier: Apache-2.0
// Test plugin: built against "another castor": an entry point that declares
// castor 0.0.1.

#include <castor/plugin.hpp>

namespace {
void register_nothing(castor::registry&) {}
} // namespace

extern "C" __attribute__((visibility("default"))) const castor_plugin_info*
castor_plugin_v1() {
  static const castor_plugin_info info{castor_plugin_magic, sizeof(castor_plugin_info),
                                       "0.0.1", "castor 0.0.1; gxx-abi 1017",
                                       &register_nothing};
  return &info;
}
