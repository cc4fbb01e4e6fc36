// SPDX-License-Identifier: Apache-2.0
// The same DAG in a binary of its own: castor's whole command line, config,
// signals, metrics and exit codes, with trade_marks beside the built-in DAGs.

#include <castor/service.hpp>

#include "marks.hpp"

int main(int argc, char** argv) {
  castor::registry registry;
  registry.add("trade_marks", marks::make);
  return castor::service_main(argc, argv, registry);
}
