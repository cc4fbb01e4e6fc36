// SPDX-License-Identifier: Apache-2.0
#pragma once

// Where a bounded replay (a backtest) ends: engine.stop (docs/pipeline.md,
// "Backtests").

#include "castor/failure.hpp"
#include "castor/start_policy.hpp"
#include "castor/time.hpp"

#include <string>
#include <string_view>

namespace castor {

struct stop_policy {
  enum class kind : uint8_t {
    /// Replay, then live, until a signal.
    never,
    /// Each partition stops at the end offset recorded at start-up.
    end,
    /// Nothing with a timestamp at or after a time is released.
    at,
  };

  kind what = kind::never;
  /// kind::at: the time, as a start policy spells it (absolute,
  /// start_of_day or relative), resolved once at start-up.
  start_policy time;
  /// kind::at with a relative time: after start-up ("relative:+30m")
  /// rather than before it ("relative:30m", "relative:-30m").
  bool ahead = false;

  static stop_policy never() { return {}; }
  static stop_policy at_end() { return {kind::end, {}, false}; }
  static stop_policy at(timestamp t) {
    return {kind::at, start_policy::absolute_time(t), false};
  }

  bool bounded() const noexcept { return what != kind::never; }

  /// The stop time of kind::at, resolved at `now` (start-up): absolute as
  /// is; start_of_day the most recent such local time strictly before
  /// `now`; relative `now` minus (or, ahead, plus) the duration.
  result<timestamp> resolve(timestamp now) const;

  /// Parses "never", "end", "absolute:<ISO 8601>",
  /// "start_of_day:HH:MM[:SS]@Zone", "relative:[-|+]<duration>".
  static result<stop_policy> parse(std::string_view text);

  std::string to_string() const;
};

} // namespace castor
