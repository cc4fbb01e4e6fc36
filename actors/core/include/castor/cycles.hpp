// SPDX-License-Identifier: Apache-2.0
#pragma once

// How a pipeline forms DAG cycles from the messages it releases
// (engine.cycles): by event time, so that the same input gives the same
// cycles on every run, or by release (beavers' way, not deterministic).

#include "castor/failure.hpp"
#include "castor/time.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace castor {

struct cycle_policy {
  enum class kind : uint8_t {
    /// One cycle per distinct timestamp, at that time (split into cycles of
    /// batch_size in merge order when more messages share it).
    timestamp,
    /// One cycle per bucket of event time [k*d, (k+1)*d) aligned to the
    /// epoch, at the bucket's end (k+1)*d.
    bucket,
    /// Up to batch_size messages per release, as they happen to come: the
    /// last bit of throughput, not deterministic.
    batch,
  };

  kind what = kind::timestamp;
  /// The bucket's length (kind::bucket).
  duration bucket{0};

  static cycle_policy by_timestamp() { return {}; }
  static cycle_policy by_bucket(duration d) { return {kind::bucket, d}; }
  static cycle_policy by_batch() { return {kind::batch, duration{0}}; }

  /// Whether cycles depend on the data only (not on arrival timing).
  bool deterministic() const noexcept { return what != kind::batch; }

  /// The bucket a time falls into, as its first instant (kind::bucket).
  timestamp bucket_start(timestamp t) const noexcept;

  /// Parses "timestamp", "batch" or a duration such as "100ms" or "1s".
  static result<cycle_policy> parse(std::string_view text);

  /// The config spelling.
  std::string to_string() const;

  friend bool operator==(const cycle_policy&, const cycle_policy&) = default;
};

} // namespace castor
