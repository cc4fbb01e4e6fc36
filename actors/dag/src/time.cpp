// SPDX-License-Identifier: Apache-2.0
#include "castor/time.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <ctime>

namespace castor {

std::string to_string(timestamp t) {
  if (t == timestamp::min())
    return "-inf";
  using namespace std::chrono;
  auto secs = floor<seconds>(t);
  auto millis = duration_cast<milliseconds>(t - secs).count();
  std::time_t tt = secs.time_since_epoch().count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

std::optional<duration> parse_duration(std::string_view text) {
  size_t split = 0;
  while (split < text.size() && std::isdigit(static_cast<unsigned char>(text[split])))
    ++split;
  if (split == 0)
    return std::nullopt;
  uint64_t number = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + split, number);
  if (err != std::errc{} || end != text.data() + split)
    return std::nullopt; // out of range for 64 bits, too
  using namespace std::chrono;
  auto unit = text.substr(split);
  int64_t per = 0; // nanoseconds per unit
  if (unit == "ms")
    per = duration_cast<duration>(milliseconds{1}).count();
  else if (unit == "s")
    per = duration_cast<duration>(seconds{1}).count();
  else if (unit == "m")
    per = duration_cast<duration>(minutes{1}).count();
  else if (unit == "h")
    per = duration_cast<duration>(hours{1}).count();
  else if (unit == "d")
    per = duration_cast<duration>(hours{24}).count();
  else
    return std::nullopt;
  // Compared before multiplying: no overflow.
  if (number > static_cast<uint64_t>(max_duration.count() / per))
    return std::nullopt;
  return duration{static_cast<int64_t>(number) * per};
}

std::string format_duration(duration d) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(d).count();
  constexpr int64_t second = 1000;
  constexpr int64_t minute = 60 * second;
  constexpr int64_t hour = 60 * minute;
  constexpr int64_t day = 24 * hour;
  if (ms != 0 && ms % day == 0)
    return fmt::format("{}d", ms / day);
  if (ms != 0 && ms % hour == 0)
    return fmt::format("{}h", ms / hour);
  if (ms != 0 && ms % minute == 0)
    return fmt::format("{}m", ms / minute);
  if (ms % second == 0)
    return fmt::format("{}s", ms / second);
  return fmt::format("{}ms", ms);
}

} // namespace castor
