// SPDX-License-Identifier: Apache-2.0
#include "castor/error.hpp"

#include <caf/atom.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace castor {

namespace {

constexpr auto category = caf::atom("castor");

} // namespace

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

caf::error make_error(ec code, std::string context) {
  return caf::error{static_cast<uint8_t>(code), category,
                    caf::make_message(std::move(context))};
}

caf::error make_error(ec code) {
  return caf::error{static_cast<uint8_t>(code), category};
}

ec code_of(const caf::error& err) noexcept {
  if (!err || err.category() != category)
    return ec::none;
  return static_cast<ec>(err.code());
}

std::string message_of(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() != category)
    return caf::to_string(err);
  auto& ctx = err.context();
  if (ctx.match_elements<std::string>())
    return ctx.get_as<std::string>(0);
  return to_string(static_cast<ec>(err.code()));
}

std::string render(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() != category)
    return caf::to_string(err);
  std::string result = to_string(static_cast<ec>(err.code()));
  auto& ctx = err.context();
  if (ctx.match_elements<std::string>()) {
    result += ": ";
    result += ctx.get_as<std::string>(0);
  }
  return result;
}

} // namespace castor
