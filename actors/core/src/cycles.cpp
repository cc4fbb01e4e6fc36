// SPDX-License-Identifier: Apache-2.0
#include "castor/cycles.hpp"

#include <fmt/format.h>

namespace castor {

timestamp cycle_policy::bucket_start(timestamp t) const noexcept {
  // Messages without any time (the beginning of time) form a group of
  // their own: no arithmetic on the extreme.
  if (t == timestamp::min())
    return t;
  auto d = bucket.count();
  auto n = t.time_since_epoch().count();
  // Floor division, also before the epoch.
  auto k = n / d - ((n % d != 0 && n < 0) ? 1 : 0);
  return timestamp{duration{k * d}};
}

result<cycle_policy> cycle_policy::parse(std::string_view text) {
  if (text == "timestamp")
    return by_timestamp();
  if (text == "batch")
    return by_batch();
  if (auto d = parse_duration(text); d && *d > duration::zero())
    return by_bucket(*d);
  return failure(ec::invalid_config,
                 fmt::format("cycles '{}': expected timestamp, batch or a positive "
                             "duration such as 100ms or 1s",
                             text));
}

std::string cycle_policy::to_string() const {
  switch (what) {
  case kind::timestamp:
    return "timestamp";
  case kind::batch:
    return "batch";
  case kind::bucket:
    return format_duration(bucket);
  }
  return "timestamp";
}

} // namespace castor
