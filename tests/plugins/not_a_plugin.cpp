// SPDX-License-Identifier: Apache-2.0
// Test library: a shared library that is not a castor plugin.

extern "C" __attribute__((visibility("default"))) int not_a_plugin() {
  return 42;
}
