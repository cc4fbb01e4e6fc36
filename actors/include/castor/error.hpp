// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <cstdint>
#include <string>

namespace castor {

/// castor's error codes, carried in `caf::error` with category "castor" and
/// a context string naming what and where.
enum class ec : uint8_t {
  /// Not an error.
  none = 0,
  /// A configuration value is missing, of the wrong type or out of range.
  invalid_config,
  /// librdkafka rejected a configuration property.
  kafka_config,
  /// A source topic does not exist on the cluster.
  unknown_topic,
  /// A topic has no partitions (or none could be listed).
  no_partitions,
  /// A broker query did not answer within its timeout.
  broker_timeout,
  /// No broker could be reached.
  broker_unreachable,
  /// librdkafka reported an error that stops the pipeline.
  kafka_error,
  /// librdkafka reported a fatal error.
  fatal_kafka_error,
  /// A deserializer rejected a message.
  deserialize_failed,
  /// A DAG node threw; the cycle failed.
  node_failed,
  /// A serializer failed on a sink's value.
  serialize_failed,
  /// A produce failed after librdkafka's retries.
  produce_failed,
  /// A time zone name is unknown.
  invalid_time_zone,
  /// The pipeline was stopped before it finished what was asked.
  stopped,
  /// A partition's position is outside what the broker holds and
  /// `auto.offset.reset` is `error`.
  offset_out_of_range,
};

/// The name of an error code, e.g. "unknown_topic".
const char* to_string(ec code) noexcept;

/// An error with castor's category: `make_error(ec::unknown_topic, "topic
/// 'words' ...")`.
caf::error make_error(ec code, std::string context);

/// `caf::error` from a bare code (enables `caf::error err = ec::stopped;`).
caf::error make_error(ec code);

/// The code of a castor error, `ec::none` for other categories.
ec code_of(const caf::error& err) noexcept;

/// What an error says without its code: the context of a castor error ("topic
/// 'words' ..."), CAF's rendering for others. For wrapping an error in
/// another one without repeating the code.
std::string message_of(const caf::error& err);

/// One line for logs and users: "unknown_topic: topic 'words' ..." for castor
/// errors, CAF's rendering for others.
std::string render(const caf::error& err);

} // namespace castor
