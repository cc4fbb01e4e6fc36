// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <string>

namespace castor {

/// Durations in castor: nanoseconds.
using duration = std::chrono::nanoseconds;

/// Points in time in castor: nanoseconds since the Unix epoch (UTC).
using timestamp = std::chrono::time_point<std::chrono::system_clock, duration>;

/// The wall clock, as a castor timestamp.
inline timestamp wall_clock_now() {
  return std::chrono::time_point_cast<duration>(std::chrono::system_clock::now());
}

/// A timestamp from Kafka's milliseconds since the epoch.
constexpr timestamp from_millis(int64_t ms) {
  return timestamp{std::chrono::milliseconds{ms}};
}

/// Milliseconds since the epoch, as Kafka counts them.
constexpr int64_t to_millis(timestamp t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch())
      .count();
}

/// ISO 8601 rendering in UTC with millisecond precision, e.g.
/// `2026-01-01T08:00:00.000Z`.
std::string to_string(timestamp t);

} // namespace castor
