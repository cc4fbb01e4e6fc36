// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace castor {

/// Durations in castor: nanoseconds.
using duration = std::chrono::nanoseconds;

/// Points in time in castor: nanoseconds since the Unix epoch (UTC).
using timestamp = std::chrono::time_point<std::chrono::system_clock, duration>;

/// The wall clock, as a castor timestamp.
inline timestamp wall_clock_now() {
  return std::chrono::time_point_cast<duration>(std::chrono::system_clock::now());
}

/// The Kafka timestamps castor takes as times: within 5e12 ms of the epoch
/// (about 1811 to 2128), so that every timestamp and the arithmetic on it
/// stay far from overflowing castor's nanoseconds; and not -1, Kafka's "no
/// timestamp".
inline constexpr int64_t max_timestamp_ms = 5'000'000'000'000;

constexpr bool valid_timestamp_ms(int64_t ms) {
  return ms != -1 && ms >= -max_timestamp_ms && ms <= max_timestamp_ms;
}

/// A timestamp from Kafka's milliseconds since the epoch (within
/// `max_timestamp_ms` of it).
constexpr timestamp from_millis(int64_t ms) {
  return timestamp{std::chrono::milliseconds{ms}};
}

/// Milliseconds since the epoch, as Kafka counts them.
constexpr int64_t to_millis(timestamp t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch())
      .count();
}

/// The longest duration castor accepts anywhere (100 years): far below where
/// nanoseconds overflow, so arithmetic on durations and timestamps is safe.
inline constexpr duration max_duration = std::chrono::hours{24 * 36500};

/// Parses `<number><unit>` with unit ms, s, m, h or d ("250ms", "30s", "15m",
/// "2h", "1d"). Empty for anything else, for negative numbers and for
/// durations longer than `max_duration` (no value wraps around).
std::optional<duration> parse_duration(std::string_view text);

/// The shortest spelling `parse_duration` reads back ("90s", "2h", "250ms";
/// sub-millisecond parts are dropped).
std::string format_duration(duration d);

/// ISO 8601 rendering in UTC with millisecond precision, e.g.
/// `2026-01-01T08:00:00.000Z`.
std::string to_string(timestamp t);

} // namespace castor
