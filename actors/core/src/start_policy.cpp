// SPDX-License-Identifier: Apache-2.0
#include "castor/start_policy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <date/date.h>
#include <date/tz.h>
#include <sstream>

namespace castor {

std::string to_string(const topic_partition& tp) {
  return fmt::format("{}[{}]", tp.topic, tp.partition);
}

namespace {

partition_start started(int64_t start, int64_t end, std::string how) {
  partition_start result;
  result.start_offset = start;
  result.end_offset = end;
  result.how = std::move(how);
  return result;
}

failure bad_policy(std::string_view text, std::string_view why) {
  return failure(ec::invalid_config, fmt::format("start policy '{}': {}", text, why));
}

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t value = 0;
  auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (err != std::errc{} || end != s.data() + s.size())
    return std::nullopt;
  return value;
}

// "08:00" or "08:00:30".
std::optional<duration> parse_time_of_day(std::string_view s) {
  using namespace std::chrono;
  if (s.size() != 5 && s.size() != 8)
    return std::nullopt;
  auto h = parse_int(s.substr(0, 2));
  auto m = parse_int(s.substr(3, 2));
  std::optional<int64_t> sec = 0;
  if (s[2] != ':' || (s.size() == 8 && s[5] != ':'))
    return std::nullopt;
  if (s.size() == 8)
    sec = parse_int(s.substr(6, 2));
  if (!h || !m || !sec || *h > 23 || *m > 59 || *sec > 59)
    return std::nullopt;
  return hours{*h} + minutes{*m} + seconds{*sec};
}

// ISO 8601 in UTC ("...Z") or with an offset ("...+01:00").
std::optional<timestamp> parse_iso8601(const std::string& s) {
  for (const char* format : {"%FT%TZ", "%FT%T%Ez"}) {
    std::istringstream in{s};
    date::sys_time<std::chrono::milliseconds> tp;
    in >> date::parse(format, tp);
    if (!in.fail() && in.peek() == std::char_traits<char>::eof())
      return std::chrono::time_point_cast<duration>(tp);
  }
  return std::nullopt;
}

} // namespace

result<start_policy> start_policy::parse(std::string_view text) {
  auto colon = text.find(':');
  auto name = text.substr(0, colon);
  auto arg =
      colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  bool has_arg = colon != std::string_view::npos;
  if (name == "latest" && !has_arg)
    return latest();
  if (name == "earliest" && !has_arg)
    return earliest();
  if (name == "relative") {
    auto d = parse_duration(arg);
    if (!d)
      return bad_policy(text,
                        "expected relative:<number><ms|s|m|h|d>, e.g. relative:15m");
    return relative_time(*d);
  }
  if (name == "start_of_day") {
    auto at = arg.find('@');
    auto tod = parse_time_of_day(arg.substr(0, at));
    if (!tod || at == std::string_view::npos || at + 1 == arg.size())
      return bad_policy(text, "expected start_of_day:HH:MM@<IANA time zone>, e.g. "
                              "start_of_day:08:00@America/New_York");
    std::string zone{arg.substr(at + 1)};
    try {
      date::locate_zone(zone);
    } catch (const std::exception&) {
      return failure(
          ec::invalid_time_zone,
          fmt::format("start policy '{}': unknown time zone '{}'", text, zone));
    }
    return start_of_day(*tod, std::move(zone));
  }
  if (name == "absolute") {
    auto t = parse_iso8601(std::string{arg});
    if (!t)
      return bad_policy(text, "expected absolute:<ISO 8601 time>, e.g. "
                              "absolute:2026-01-01T00:00:00Z");
    return absolute_time(*t);
  }
  if (name == "committed") {
    if (!has_arg)
      return committed();
    auto fallback = parse(arg);
    if (!fallback)
      return fallback.error();
    if (fallback->what == kind::committed)
      return bad_policy(text, "the fallback of committed cannot be committed");
    return committed(std::move(*fallback));
  }
  if (name == "offsets" && has_arg) {
    auto semi = arg.find(';');
    auto list = arg.substr(0, semi);
    std::map<int32_t, int64_t> offsets;
    while (!list.empty()) {
      auto comma = list.find(',');
      auto item = list.substr(0, comma);
      auto eq = item.find('=');
      auto p = parse_int(item.substr(0, eq));
      auto o =
          eq == std::string_view::npos ? std::nullopt : parse_int(item.substr(eq + 1));
      if (!p || !o || *p < 0 || *o < 0)
        return bad_policy(text, "expected offsets:<partition>=<offset>,... e.g. "
                                "offsets:0=42,1=7");
      offsets[static_cast<int32_t>(*p)] = *o;
      list =
          comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    if (offsets.empty())
      return bad_policy(text, "no offsets given");
    if (semi == std::string_view::npos)
      return explicit_offsets(std::move(offsets));
    auto fallback = parse(arg.substr(semi + 1));
    if (!fallback)
      return fallback.error();
    return explicit_offsets(std::move(offsets), std::move(*fallback));
  }
  return bad_policy(text, "expected latest, earliest, committed[:<fallback>], "
                          "relative:<duration>, start_of_day:HH:MM@<zone>, "
                          "absolute:<ISO 8601 time> or offsets:<p>=<offset>,...");
}

std::string start_policy::to_string() const {
  switch (what) {
  case kind::latest:
    return "latest";
  case kind::earliest:
    return "earliest";
  case kind::relative:
    return "relative:" + format_duration(relative);
  case kind::start_of_day: {
    auto mins = std::chrono::duration_cast<std::chrono::minutes>(time_of_day).count();
    return fmt::format("start_of_day:{:02}:{:02}@{}", mins / 60, mins % 60, time_zone);
  }
  case kind::absolute:
    return "absolute:" + castor::to_string(absolute);
  case kind::committed:
    return fallback ? "committed:" + fallback->to_string() : "committed";
  case kind::offsets: {
    std::string result = "offsets:";
    bool first = true;
    for (auto& [p, o] : offsets) {
      result += fmt::format("{}{}={}", first ? "" : ",", p, o);
      first = false;
    }
    if (fallback)
      result += ";" + fallback->to_string();
    return result;
  }
  }
  return "unknown";
}

result<timestamp> last_start_of_day(timestamp now, duration time_of_day,
                                    const std::string& time_zone) {
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(time_zone);
  } catch (const std::exception&) {
    return failure(ec::invalid_time_zone,
                   fmt::format("unknown time zone '{}'", time_zone));
  }
  auto local_now = zone->to_local(date::sys_time<duration>{now.time_since_epoch()});
  auto today = date::floor<date::days>(local_now);
  for (int back = 0; back <= 2; ++back) {
    auto local_start = today - date::days{back} + time_of_day;
    auto info = zone->get_info(local_start);
    date::sys_time<duration> start;
    if (info.result == date::local_info::nonexistent)
      // The clock jumped over this local time: the day starts at the jump.
      start = date::sys_time<duration>{info.first.end};
    else
      // Ambiguous (the clock went back): the first occurrence.
      start = zone->to_sys(local_start, date::choose::earliest);
    if (start < date::sys_time<duration>{now.time_since_epoch()})
      return timestamp{start.time_since_epoch()};
  }
  return failure(ec::invalid_config, "cannot compute the start of day");
}

namespace {

result<partition_start> by_time(timestamp t, const std::string& label,
                                const topic_partition& tp, int64_t low, int64_t high,
                                partition_queries& queries) {
  auto found = queries.offset_for_time(tp, t);
  if (!found)
    return found.error();
  if (*found >= 0) {
    auto start = std::clamp(*found, low, high);
    return started(start, high,
                   fmt::format("{} {}: offset {}", label, to_string(t), start));
  }
  // -1: no message at or after t, unless the last message says otherwise.
  if (high > low) {
    auto last = queries.timestamp_at(tp, high - 1);
    if (!last)
      return last.error();
    if (*last && **last >= t) {
      // Bisect for the first offset with timestamp >= t; ts(hi) >= t holds.
      int64_t lo = low;
      int64_t hi = high - 1;
      while (lo < hi) {
        auto mid = lo + (hi - lo) / 2;
        auto ts = queries.timestamp_at(tp, mid);
        if (!ts)
          return ts.error();
        if (*ts && **ts >= t)
          hi = mid;
        else
          lo = mid + 1;
      }
      return started(
          lo, high,
          fmt::format("{} {}: offset {} (found by bisection)", label, to_string(t), lo));
    }
  }
  return started(high, high,
                 fmt::format("{} {}: no message at or after it, end offset {}", label,
                             to_string(t), high));
}

} // namespace

const char* to_string(offset_reset reset) noexcept {
  switch (reset) {
  case offset_reset::earliest:
    return "earliest";
  case offset_reset::latest:
    return "latest";
  case offset_reset::error:
    return "error";
  }
  return "earliest";
}

result<offset_reset> parse_offset_reset(std::string_view text) {
  if (text == "smallest" || text == "earliest" || text == "beginning")
    return offset_reset::earliest;
  if (text == "largest" || text == "latest" || text == "end")
    return offset_reset::latest;
  if (text == "error")
    return offset_reset::error;
  return failure(ec::invalid_config,
                 fmt::format("auto.offset.reset '{}': expected earliest, latest or "
                             "error (or librdkafka's other spellings)",
                             text));
}

namespace {

// An asked offset (committed or explicit) checked against [low, high]:
// inside, it is the start; outside, `reset` decides and says so.
result<partition_start> asked_offset(int64_t asked, const char* what,
                                     const topic_partition& tp, int64_t low, int64_t high,
                                     offset_reset reset) {
  if (asked >= low && asked <= high)
    return started(asked, high, fmt::format("{}: offset {}", what, asked));
  auto where = asked < low ? fmt::format("below the oldest offset the broker holds, {} "
                                         "(retention removed [{}, {}))",
                                         low, asked, low)
                           : fmt::format("past the end, {} (the topic was truncated "
                                         "or recreated?)",
                                         high);
  if (reset == offset_reset::error)
    return failure(ec::offset_out_of_range,
                   fmt::format("{}: {} offset {} is {}; auto.offset.reset is error",
                               to_string(tp), what, asked, where));
  partition_start result;
  result.end_offset = high;
  result.start_offset = reset == offset_reset::earliest ? low : high;
  // Skipped: what lay between the asked offset and the start (nothing when
  // going back to re-read).
  result.skipped = std::max<int64_t>(result.start_offset - asked, 0);
  result.how = fmt::format("{}: offset {} out of range, auto.offset.reset {}: offset {}",
                           what, asked, to_string(reset), result.start_offset);
  result.out_of_range = fmt::format(
      "{} offset {} is {}: starts at {} (auto.offset.reset = {}), skipping {} "
      "offset(s)",
      what, asked, where, result.start_offset, to_string(reset), result.skipped);
  return result;
}

} // namespace

result<partition_start> resolve_start(const start_policy& policy,
                                      const topic_partition& tp, timestamp now,
                                      partition_queries& queries, offset_reset reset) {
  auto marks = queries.watermarks(tp);
  if (!marks)
    return marks.error();
  auto [low, high] = *marks;
  using kind = start_policy::kind;
  switch (policy.what) {
  case kind::latest:
    return started(high, high, fmt::format("latest: offset {}", high));
  case kind::earliest:
    return started(low, high, fmt::format("earliest: offset {}", low));
  case kind::relative:
    return by_time(now - policy.relative, "relative", tp, low, high, queries);
  case kind::absolute:
    return by_time(policy.absolute, "absolute", tp, low, high, queries);
  case kind::start_of_day: {
    auto t = last_start_of_day(now, policy.time_of_day, policy.time_zone);
    if (!t)
      return t.error();
    return by_time(*t, "start of day", tp, low, high, queries);
  }
  case kind::committed: {
    auto committed = queries.committed(tp);
    if (!committed)
      return committed.error();
    if (*committed && **committed >= 0)
      return asked_offset(**committed, "committed", tp, low, high, reset);
    auto fallback = policy.fallback ? *policy.fallback : start_policy::earliest();
    auto result = resolve_start(fallback, tp, now, queries, reset);
    if (result)
      result->how = "no committed offset, fallback " + result->how;
    return result;
  }
  case kind::offsets: {
    if (auto i = policy.offsets.find(tp.partition); i != policy.offsets.end())
      return asked_offset(i->second, "explicit", tp, low, high, reset);
    if (!policy.fallback)
      return failure(ec::invalid_config,
                     fmt::format("start policy '{}' gives no offset for {}",
                                 policy.to_string(), to_string(tp)));
    return resolve_start(*policy.fallback, tp, now, queries, reset);
  }
  }
  return failure(ec::invalid_config, "unknown start policy");
}

} // namespace castor
