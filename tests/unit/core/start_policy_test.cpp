// SPDX-License-Identifier: Apache-2.0
// Start policies and their resolution into offsets (docs/pipeline.md), through
// a fake of the broker queries.

#include "castor/start_policy.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <vector>

using namespace std::chrono_literals;
using castor::start_policy;
using castor::timestamp;
using castor::topic_partition;

namespace {

timestamp utc(const char* iso) {
  auto p = start_policy::parse(std::string{"absolute:"} + iso);
  REQUIRE(p);
  return p->absolute;
}

// A partition whose message i has timestamp stamps[i - low].
struct fake_partition {
  int64_t low = 0;
  std::vector<timestamp> stamps;
  std::optional<int64_t> committed;
  int64_t high() const { return low + static_cast<int64_t>(stamps.size()); }
};

// Answers like a broker; `broken_time_lookup` answers every time lookup with
// -1, like librdkafka's mock cluster.
struct fake_queries : castor::partition_queries {
  std::map<topic_partition, fake_partition> parts;
  bool broken_time_lookup = false;
  int timestamp_reads = 0;

  castor::result<std::pair<int64_t, int64_t>>
  watermarks(const topic_partition& tp) override {
    auto& p = parts.at(tp);
    return std::pair{p.low, p.high()};
  }

  castor::result<int64_t> offset_for_time(const topic_partition& tp,
                                          timestamp t) override {
    if (broken_time_lookup)
      return -1;
    auto& p = parts.at(tp);
    for (size_t i = 0; i < p.stamps.size(); ++i)
      if (p.stamps[i] >= t)
        return p.low + static_cast<int64_t>(i);
    return -1;
  }

  castor::result<std::optional<int64_t>> committed(const topic_partition& tp) override {
    return parts.at(tp).committed;
  }

  castor::result<std::optional<timestamp>> timestamp_at(const topic_partition& tp,
                                                        int64_t offset) override {
    ++timestamp_reads;
    auto& p = parts.at(tp);
    return std::optional<timestamp>{p.stamps.at(static_cast<size_t>(offset - p.low))};
  }
};

const topic_partition words{"words", 0};

fake_queries hourly(timestamp first, int count, int64_t low = 0) {
  fake_queries q;
  fake_partition p;
  p.low = low;
  for (int i = 0; i < count; ++i)
    p.stamps.push_back(first + std::chrono::hours{i});
  q.parts[words] = p;
  return q;
}

} // namespace

TEST_CASE("start policies parse from their config spelling and print back", "[start]") {
  for (auto text : {"latest", "earliest", "relative:15m", "relative:2h", "relative:90s",
                    "start_of_day:08:00@America/New_York",
                    "absolute:2026-01-01T00:00:00.000Z", "committed:earliest",
                    "committed:relative:1d", "offsets:0=42,1=7", "offsets:0=42;latest"}) {
    auto p = start_policy::parse(text);
    REQUIRE(p);
    CHECK(p->to_string() == text);
  }
  CHECK(start_policy::parse("committed")->fallback->what == start_policy::kind::earliest);
  CHECK(start_policy::parse("absolute:2026-01-01T01:00:00+01:00")->absolute ==
        utc("2026-01-01T00:00:00Z"));
}

TEST_CASE("bad start policies give errors naming the text", "[start]") {
  for (auto text : {"newest", "relative:15", "relative:-5m", "start_of_day:25:00@UTC",
                    "start_of_day:08:00", "absolute:yesterday", "offsets:", "offsets:a=1",
                    "committed:committed", "latest:1"}) {
    auto p = start_policy::parse(text);
    REQUIRE_FALSE(p);
    CHECK(castor::code_of(p.error()) == castor::ec::invalid_config);
    CHECK_THAT(castor::render(p.error()), Catch::Contains(text));
  }
  auto zone = start_policy::parse("start_of_day:08:00@Mars/Olympus");
  REQUIRE_FALSE(zone);
  CHECK(castor::code_of(zone.error()) == castor::ec::invalid_time_zone);
  CHECK_THAT(castor::render(zone.error()), Catch::Contains("Mars/Olympus"));
}

TEST_CASE("latest and earliest start at the end and beginning offsets", "[start]") {
  auto q = hourly(utc("2026-01-01T00:00:00Z"), 10, 5);
  auto now = utc("2026-02-01T00:00:00Z");
  auto latest = castor::resolve_start(start_policy::latest(), words, now, q);
  REQUIRE(latest);
  CHECK(latest->start_offset == 15);
  CHECK(latest->end_offset == 15);
  auto earliest = castor::resolve_start(start_policy::earliest(), words, now, q);
  REQUIRE(earliest);
  CHECK(earliest->start_offset == 5);
  CHECK(earliest->end_offset == 15);
}

TEST_CASE("time policies start at the first offset at or after the time", "[start]") {
  auto q = hourly(utc("2026-01-01T00:00:00Z"), 10);
  auto now = utc("2026-01-01T12:00:00Z");
  auto relative = castor::resolve_start(start_policy::relative_time(5h), words, now, q);
  REQUIRE(relative);
  CHECK(relative->start_offset == 7); // 07:00
  auto absolute = castor::resolve_start(
      start_policy::absolute_time(utc("2026-01-01T02:30:00Z")), words, now, q);
  REQUIRE(absolute);
  CHECK(absolute->start_offset == 3);
}

TEST_CASE("a time lookup that finds nothing starts at the end offset", "[start]") {
  auto q = hourly(utc("2026-01-01T00:00:00Z"), 10);
  auto r = castor::resolve_start(start_policy::absolute_time(utc("2026-01-02T00:00:00Z")),
                                 words, utc("2026-01-03T00:00:00Z"), q);
  REQUIRE(r);
  CHECK(r->start_offset == 10);
  CHECK(r->end_offset == 10);
  CHECK_THAT(r->how, Catch::Contains("no message at or after"));
}

TEST_CASE("a time lookup the broker cannot answer is found by bisection", "[start]") {
  auto q = hourly(utc("2026-01-01T00:00:00Z"), 1000);
  q.broken_time_lookup = true;
  auto now = utc("2026-03-01T00:00:00Z");
  for (int target : {0, 1, 499, 500, 998, 999}) {
    q.timestamp_reads = 0;
    auto t = utc("2026-01-01T00:00:00Z") + std::chrono::hours{target} - 30min;
    auto r = castor::resolve_start(start_policy::absolute_time(t), words, now, q);
    REQUIRE(r);
    CHECK(r->start_offset == target);
    CHECK(q.timestamp_reads <= 12); // last message + log2(1000)
  }
  // Past the last message: one read, then the end offset.
  q.timestamp_reads = 0;
  auto r = castor::resolve_start(start_policy::absolute_time(utc("2026-03-01T00:00:00Z")),
                                 words, now, q);
  REQUIRE(r);
  CHECK(r->start_offset == 1000);
  CHECK(q.timestamp_reads == 1);
}

TEST_CASE("committed resumes at the committed offset, else uses its fallback",
          "[start]") {
  auto q = hourly(utc("2026-01-01T00:00:00Z"), 10);
  auto now = utc("2026-01-02T00:00:00Z");
  auto none = castor::resolve_start(start_policy::committed(start_policy::latest()),
                                    words, now, q);
  REQUIRE(none);
  CHECK(none->start_offset == 10);
  CHECK_THAT(none->how, Catch::Contains("no committed offset, fallback latest"));
  q.parts[words].committed = 4;
  auto some = castor::resolve_start(start_policy::committed(), words, now, q);
  REQUIRE(some);
  CHECK(some->start_offset == 4);
}

TEST_CASE("explicit offsets are per partition, reset when out of range, with an "
          "optional fallback",
          "[start]") {
  auto q = hourly(utc("2026-01-01T00:00:00Z"), 10, 2);
  q.parts[{"words", 1}] = q.parts[words];
  auto now = utc("2026-01-02T00:00:00Z");
  auto policy = start_policy::explicit_offsets({{0, 5}});
  auto r = castor::resolve_start(policy, words, now, q);
  REQUIRE(r);
  CHECK(r->start_offset == 5);
  auto missing = castor::resolve_start(policy, {"words", 1}, now, q);
  REQUIRE_FALSE(missing);
  CHECK_THAT(castor::render(missing.error()), Catch::Contains("no offset for words[1]"));
  auto with_fallback = start_policy::explicit_offsets({{0, 0}}, start_policy::earliest());
  auto clamped = castor::resolve_start(with_fallback, words, now, q);
  REQUIRE(clamped);
  CHECK(clamped->start_offset == 2);
  CHECK(clamped->skipped == 2);
  CHECK_FALSE(clamped->out_of_range.empty());
  auto fallback = castor::resolve_start(with_fallback, {"words", 1}, now, q);
  REQUIRE(fallback);
  CHECK(fallback->start_offset == 2);
}

TEST_CASE("a committed offset below what the broker holds starts at the oldest offset "
          "and says what it skipped, never silently",
          "[start]") {
  auto q = hourly(utc("2026-01-01T00:00:00Z"), 10, 100); // offsets [100, 110)
  auto now = utc("2026-01-02T00:00:00Z");
  q.parts[words].committed = 40; // retention removed [40, 100)
  auto r = castor::resolve_start(start_policy::committed(), words, now, q);
  REQUIRE(r);
  CHECK(r->start_offset == 100);
  CHECK(r->skipped == 60);
  CHECK_THAT(r->out_of_range, Catch::Contains("committed offset 40 is below the oldest "
                                              "offset the broker holds, 100"));
  // latest skips what the broker still holds, too.
  auto latest = castor::resolve_start(start_policy::committed(), words, now, q,
                                      castor::offset_reset::latest);
  REQUIRE(latest);
  CHECK(latest->start_offset == 110);
  CHECK(latest->skipped == 70);
  // error stops.
  auto error = castor::resolve_start(start_policy::committed(), words, now, q,
                                     castor::offset_reset::error);
  REQUIRE_FALSE(error);
  CHECK(castor::code_of(error.error()) == castor::ec::offset_out_of_range);
  CHECK_THAT(castor::render(error.error()),
             Catch::Contains("words[0]: committed offset 40"));
  // Past the end (a topic recreated): back to the oldest, nothing skipped.
  q.parts[words].committed = 500;
  auto past = castor::resolve_start(start_policy::committed(), words, now, q);
  REQUIRE(past);
  CHECK(past->start_offset == 100);
  CHECK(past->skipped == 0);
  CHECK_THAT(past->out_of_range, Catch::Contains("past the end, 110"));
  // In range: nothing to say.
  q.parts[words].committed = 105;
  auto fine = castor::resolve_start(start_policy::committed(), words, now, q);
  REQUIRE(fine);
  CHECK(fine->out_of_range.empty());
  CHECK(fine->skipped == 0);
}

TEST_CASE("auto.offset.reset reads librdkafka's spellings", "[start]") {
  using castor::offset_reset;
  for (auto text : {"smallest", "earliest", "beginning"})
    CHECK(castor::parse_offset_reset(text) == offset_reset::earliest);
  for (auto text : {"largest", "latest", "end"})
    CHECK(castor::parse_offset_reset(text) == offset_reset::latest);
  CHECK(castor::parse_offset_reset("error") == offset_reset::error);
  CHECK_FALSE(castor::parse_offset_reset("oldest"));
}

TEST_CASE("start of day is the most recent local start strictly before now", "[start]") {
  using castor::last_start_of_day;
  auto at = [](const char* now, const char* zone, std::chrono::minutes tod) {
    auto t = last_start_of_day(utc(now), tod, zone);
    REQUIRE(t);
    return *t;
  };
  CHECK(at("2026-06-10T13:00:00Z", "America/New_York", 8h) ==
        utc("2026-06-10T12:00:00Z")); // 08:00 EDT
  CHECK(at("2026-06-10T11:59:00Z", "America/New_York", 8h) ==
        utc("2026-06-09T12:00:00Z")); // before today's 08:00: yesterday's
  CHECK(at("2026-06-10T12:00:00Z", "America/New_York", 8h) ==
        utc("2026-06-09T12:00:00Z")); // strictly before now
  CHECK(at("2026-06-10T13:00:00Z", "UTC", 0h) == utc("2026-06-10T00:00:00Z"));
}

TEST_CASE("start of day is computed in true local time across DST changes", "[start]") {
  using castor::last_start_of_day;
  auto at = [](const char* now, const char* zone, std::chrono::minutes tod) {
    auto t = last_start_of_day(utc(now), tod, zone);
    REQUIRE(t);
    return *t;
  };
  // New York springs forward on 2026-03-08: 08:00 is 12:00Z that day (EDT),
  // 13:00Z the day before (EST). A fixed offset or "minus 24 h" gets this wrong.
  CHECK(at("2026-03-08T12:30:00Z", "America/New_York", 8h) ==
        utc("2026-03-08T12:00:00Z"));
  CHECK(at("2026-03-08T11:30:00Z", "America/New_York", 8h) ==
        utc("2026-03-07T13:00:00Z"));
  // ...and falls back on 2026-11-01: 08:00 is 13:00Z (EST).
  CHECK(at("2026-11-01T13:30:00Z", "America/New_York", 8h) ==
        utc("2026-11-01T13:00:00Z"));
  // 02:30 does not exist on 2026-03-08 in New York: the day starts at the jump
  // (03:00 EDT = 07:00Z).
  CHECK(at("2026-03-08T08:00:00Z", "America/New_York", 150min) ==
        utc("2026-03-08T07:00:00Z"));
  // 01:30 happens twice on 2026-11-01: the first one (EDT, 05:30Z) counts.
  CHECK(at("2026-11-01T07:00:00Z", "America/New_York", 90min) ==
        utc("2026-11-01T05:30:00Z"));
  // Europe/London across its spring change (2026-03-29).
  CHECK(at("2026-03-29T09:00:00Z", "Europe/London", 8h) == utc("2026-03-29T07:00:00Z"));
}

TEST_CASE("start of day resolves to an offset through the time lookup", "[start]") {
  auto q = hourly(utc("2026-03-07T00:00:00Z"), 48);
  auto r = castor::resolve_start(start_policy::start_of_day(8h, "America/New_York"),
                                 words, utc("2026-03-08T15:00:00Z"), q);
  REQUIRE(r);
  CHECK(r->start_offset == 36); // 2026-03-08T12:00Z
}

TEST_CASE("durations parse with their unit and never wrap around", "[time]") {
  using castor::parse_duration;
  CHECK(parse_duration("250ms") == castor::duration{250ms});
  CHECK(parse_duration("30s") == castor::duration{30s});
  CHECK(parse_duration("15m") == castor::duration{15min});
  CHECK(parse_duration("2h") == castor::duration{2h});
  CHECK(parse_duration("1d") == castor::duration{24h});
  CHECK(parse_duration("0s") == castor::duration::zero());
  CHECK(parse_duration("36500d") == castor::max_duration);
  // 18446744074 s is 2^64 ns and a bit: it used to wrap around to 290 ms.
  for (auto text : {"18446744074s", "36501d", "99999999999999999999ms", "-5s", "5", "s",
                    "5 s", "5sec", "", "1.5s", "+5s"})
    CHECK_FALSE(parse_duration(text));
  for (auto d : {castor::duration{90s}, castor::duration{2h}, castor::duration{250ms},
                 castor::duration{24h}, castor::duration::zero()})
    CHECK(parse_duration(castor::format_duration(d)) == d);
}
