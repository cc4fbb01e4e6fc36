// SPDX-License-Identifier: Apache-2.0
#pragma once

// trade_marks: each trade joined to the last quote of its symbol at the
// trade's time, with the quote's mid and the trade's slippage against it.
//
//   sources  quotes  JSON {"symbol", "bid", "ask"}
//            trades  JSON {"id", "symbol", "side" ("buy"|"sell"), "price"}
//   sink     marks   key = trade id, JSON {"id", "symbol", "side", "price",
//                    "mid", "slippage_bps", "quote_age_ms"}; mid and
//                    slippage are null when the symbol has no quote yet or
//                    its last quote is older than max_quote_age
//   params   max_quote_age  duration, default "1m"
//            min_spread_bps float, default 0: quotes with a narrower spread
//                           (crossed or locked books) are ignored

#include <castor/plugin.hpp>

namespace marks {

caf::expected<castor::pipeline_definition_ptr> make(const castor::dag_config& cfg);

} // namespace marks
