// SPDX-License-Identifier: Apache-2.0
// Test plugin: its registration throws.

#include <castor/plugin.hpp>

CASTOR_PLUGIN(registry) {
  (void)registry;
  throw std::runtime_error("cannot reach the pricing library");
}
