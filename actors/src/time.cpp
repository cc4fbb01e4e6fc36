// SPDX-License-Identifier: Apache-2.0
#include "castor/time.hpp"

#include <fmt/format.h>

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

} // namespace castor
