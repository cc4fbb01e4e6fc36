// SPDX-License-Identifier: Apache-2.0
#include "castor/failure.hpp"

namespace castor {

const char* to_string(ec code) noexcept {
  switch (code) {
  case ec::none:
    return "none";
  case ec::invalid_config:
    return "invalid_config";
  case ec::kafka_config:
    return "kafka_config";
  case ec::unknown_topic:
    return "unknown_topic";
  case ec::no_partitions:
    return "no_partitions";
  case ec::broker_timeout:
    return "broker_timeout";
  case ec::broker_unreachable:
    return "broker_unreachable";
  case ec::kafka_error:
    return "kafka_error";
  case ec::fatal_kafka_error:
    return "fatal_kafka_error";
  case ec::deserialize_failed:
    return "deserialize_failed";
  case ec::node_failed:
    return "node_failed";
  case ec::serialize_failed:
    return "serialize_failed";
  case ec::produce_failed:
    return "produce_failed";
  case ec::invalid_time_zone:
    return "invalid_time_zone";
  case ec::stopped:
    return "stopped";
  case ec::offset_out_of_range:
    return "offset_out_of_range";
  }
  return "unknown";
}

std::string render(const failure& f) {
  if (!f)
    return "no error";
  return std::string{to_string(f.code())} + ": " + f.what();
}

} // namespace castor
