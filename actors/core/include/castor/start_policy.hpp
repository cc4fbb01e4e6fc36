// SPDX-License-Identifier: Apache-2.0
#pragma once

// Where replay starts (docs/pipeline.md): start policies and their resolution
// into offsets, behind a seam (`partition_queries`) that librdkafka
// implements in production and tests fake.

#include "castor/failure.hpp"
#include "castor/time.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace castor {

/// A topic and a partition.
struct topic_partition {
  std::string topic;
  int32_t partition = 0;

  friend bool operator==(const topic_partition&, const topic_partition&) = default;
  friend auto operator<=>(const topic_partition&, const topic_partition&) = default;
};

/// "topic[3]".
std::string to_string(const topic_partition& tp);

/// Where a source starts reading, resolved once per partition at start-up.
struct start_policy {
  enum class kind : uint8_t {
    /// The partition's end offset: only new messages.
    latest,
    /// The partition's beginning offset.
    earliest,
    /// The first offset with timestamp >= now - `relative`.
    relative,
    /// The first offset with timestamp >= the most recent local start of day
    /// (`time_of_day` in `time_zone`) strictly before now.
    start_of_day,
    /// The first offset with timestamp >= `absolute`.
    absolute,
    /// The group's committed offset; `fallback` where none exists.
    committed,
    /// `offsets` per partition; `fallback` for partitions not listed.
    offsets,
  };

  kind what = kind::latest;
  duration relative{0};
  duration time_of_day{0};
  std::string time_zone;
  timestamp absolute{};
  std::map<int32_t, int64_t> offsets;
  std::shared_ptr<const start_policy> fallback;

  static start_policy latest() { return {}; }
  static start_policy earliest() {
    start_policy p;
    p.what = kind::earliest;
    return p;
  }
  static start_policy relative_time(duration d) {
    start_policy p;
    p.what = kind::relative;
    p.relative = d;
    return p;
  }
  static start_policy start_of_day(duration time_of_day, std::string time_zone) {
    start_policy p;
    p.what = kind::start_of_day;
    p.time_of_day = time_of_day;
    p.time_zone = std::move(time_zone);
    return p;
  }
  static start_policy absolute_time(timestamp t) {
    start_policy p;
    p.what = kind::absolute;
    p.absolute = t;
    return p;
  }
  static start_policy committed(start_policy fallback = earliest()) {
    start_policy p;
    p.what = kind::committed;
    p.fallback = std::make_shared<const start_policy>(std::move(fallback));
    return p;
  }
  static start_policy explicit_offsets(std::map<int32_t, int64_t> offsets,
                                       std::optional<start_policy> fallback = {}) {
    start_policy p;
    p.what = kind::offsets;
    p.offsets = std::move(offsets);
    if (fallback)
      p.fallback = std::make_shared<const start_policy>(std::move(*fallback));
    return p;
  }

  /// Parses the config spelling: `latest`, `earliest`, `relative:15m`
  /// (units ms, s, m, h, d), `start_of_day:08:00@America/New_York`,
  /// `absolute:2026-01-01T00:00:00Z`, `committed` or `committed:<fallback>`
  /// (default fallback: earliest), `offsets:0=42,1=7` or
  /// `offsets:0=42;<fallback>`.
  static result<start_policy> parse(std::string_view text);

  /// The config spelling of this policy.
  std::string to_string() const;
};

/// The broker queries that start-up needs, one partition at a time. The
/// production implementation wraps librdkafka; tests fake it.
class partition_queries {
public:
  virtual ~partition_queries() = default;

  /// Low (first) and high (end, exclusive) offsets.
  virtual result<std::pair<int64_t, int64_t>> watermarks(const topic_partition& tp) = 0;

  /// The first offset whose timestamp is >= `t`, or -1 when the broker
  /// knows none.
  virtual result<int64_t> offset_for_time(const topic_partition& tp, timestamp t) = 0;

  /// The group's committed offset, if any.
  virtual result<std::optional<int64_t>> committed(const topic_partition& tp) = 0;

  /// The timestamp of the message at `offset` (none if it has none).
  virtual result<std::optional<timestamp>> timestamp_at(const topic_partition& tp,
                                                        int64_t offset) = 0;
};

/// What happens when a partition's position is outside what the broker
/// holds (retention removed it, or the topic was truncated): librdkafka's
/// `auto.offset.reset`, which castor sets to `earliest` unless told
/// otherwise, and reports either way.
enum class offset_reset : uint8_t {
  /// Go on from the oldest offset the broker holds (castor's default: skips
  /// only what is gone).
  earliest,
  /// Go on from the end (skips what the broker still holds, too).
  latest,
  /// Stop with an error.
  error,
};

/// "earliest", "latest" or "error".
const char* to_string(offset_reset reset) noexcept;

/// librdkafka's spellings of `auto.offset.reset`: smallest, earliest,
/// beginning; largest, latest, end; error.
result<offset_reset> parse_offset_reset(std::string_view text);

/// Where a partition's replay starts and ends.
struct partition_start {
  /// First offset to read.
  int64_t start_offset = 0;
  /// End offset (exclusive) at start-up: the partition is caught up once its
  /// position reaches it.
  int64_t end_offset = 0;
  /// How the start was found, for the start-up log line.
  std::string how;
  /// Offsets skipped because a committed or explicit offset was below what
  /// the broker holds (or reset to the end); `out_of_range` says why.
  int64_t skipped = 0;
  /// Set when the asked offset was outside [low, high]: what happened.
  std::string out_of_range;
};

/// The most recent instant, strictly before `now`, at which the local time in
/// `time_zone` was `time_of_day` (a day whose local time skips it, at a DST
/// change, starts at the first instant after the gap).
result<timestamp> last_start_of_day(timestamp now, duration time_of_day,
                                    const std::string& time_zone);

/// Resolves `policy` for one partition. A time lookup that finds no message
/// at or after the time starts at the end offset. When the broker answers a
/// time lookup with -1 although the partition's last message is at or after
/// the time (librdkafka's mock cluster does), the first such offset is found
/// by bisecting over offsets with `timestamp_at`.
///
/// A committed or explicit offset outside what the broker holds is resolved
/// with `reset` (never silently): `earliest` starts at the oldest offset,
/// `latest` at the end, `error` fails with `ec::offset_out_of_range`; the
/// result's `out_of_range` and `skipped` say what was done.
result<partition_start> resolve_start(const start_policy& policy,
                                      const topic_partition& tp, timestamp now,
                                      partition_queries& queries,
                                      offset_reset reset = offset_reset::earliest);

} // namespace castor
