// SPDX-License-Identifier: Apache-2.0
#pragma once

// What DAG code sees of nodes besides their values: their kinds, their
// metrics, and the timer a timer manager node hands its readers.

#include "castor/time.hpp"

#include <cstdint>
#include <optional>

namespace castor {

namespace detail {
class timer_node;
} // namespace detail

/// The kinds of DAG nodes (docs/dag.md).
enum class node_kind : uint8_t {
  source,
  stream,
  state,
  constant,
  sink,
  now,
  timer,
  cutoff,
  silence,
};

/// The lowercase name of a node kind, e.g. "stream".
const char* to_string(node_kind kind) noexcept;

/// What a node did so far.
struct node_metrics {
  /// Times the node ran.
  uint64_t runs = 0;
  /// Times the node counted as updated.
  uint64_t updates = 0;
  /// Time spent in the node's function (zero while timing is off).
  duration total_time{0};
  /// The longest single run.
  duration max_time{0};
};

/// The value of a timer manager node: the one timer it owns. Node functions
/// receive it as `const timer&` and may still set or clear the timer.
class timer {
public:
  /// Sets the timer to fire at `t`, replacing any pending time.
  void set(timestamp t) const;

  /// Cancels the pending timer, if any.
  void clear() const;

  /// The pending time, if any.
  std::optional<timestamp> next() const noexcept;

  /// Whether the timer fired in the current cycle.
  bool fired() const noexcept;

private:
  friend class detail::timer_node;
  detail::timer_node* node_ = nullptr;
};

} // namespace castor
