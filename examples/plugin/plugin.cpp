// SPDX-License-Identifier: Apache-2.0
// The plugin: the stock castor binary runs trade_marks with
//   [engine]
//   dag = "trade_marks"
//   plugins = ["build/libcastor_trade_marks.so"]

#include "marks.hpp"

CASTOR_PLUGIN(registry) {
  registry.add("trade_marks", marks::make);
}
