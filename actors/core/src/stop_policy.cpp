// SPDX-License-Identifier: Apache-2.0
#include "castor/stop_policy.hpp"

#include <fmt/format.h>

namespace castor {

result<timestamp> stop_policy::resolve(timestamp now) const {
  switch (time.what) {
  case start_policy::kind::absolute:
    return time.absolute;
  case start_policy::kind::relative:
    return ahead ? now + time.relative : now - time.relative;
  case start_policy::kind::start_of_day:
    return last_start_of_day(now, time.time_of_day, time.time_zone);
  default:
    return failure(ec::invalid_config, "a stop time must be absolute, start_of_day or "
                                       "relative");
  }
}

result<stop_policy> stop_policy::parse(std::string_view text) {
  if (text == "never")
    return never();
  if (text == "end")
    return at_end();
  auto bad = [&](const std::string& why) {
    return failure(ec::invalid_config,
                   fmt::format("stop '{}': {}; expected never, end, "
                               "absolute:<ISO 8601 time>, start_of_day:HH:MM@Zone or "
                               "relative:[-|+]<duration>",
                               text, why));
  };
  stop_policy p;
  p.what = kind::at;
  std::string spelling{text};
  constexpr std::string_view relative = "relative:";
  if (text.starts_with(relative) && text.size() > relative.size() &&
      (text[relative.size()] == '-' || text[relative.size()] == '+')) {
    p.ahead = text[relative.size()] == '+';
    spelling = std::string{relative} + std::string{text.substr(relative.size() + 1)};
  }
  auto time = start_policy::parse(spelling);
  if (!time)
    return bad(message_of(time.error()));
  if (time->what != start_policy::kind::absolute &&
      time->what != start_policy::kind::relative &&
      time->what != start_policy::kind::start_of_day)
    return bad("not a time");
  p.time = std::move(*time);
  return p;
}

std::string stop_policy::to_string() const {
  switch (what) {
  case kind::never:
    return "never";
  case kind::end:
    return "end";
  case kind::at:
    break;
  }
  if (time.what == start_policy::kind::relative)
    return fmt::format("relative:{}{}", ahead ? "+" : "-",
                       format_duration(time.relative));
  return time.to_string();
}

} // namespace castor
