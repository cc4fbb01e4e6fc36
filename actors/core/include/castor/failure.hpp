// SPDX-License-Identifier: Apache-2.0
#pragma once

// castor's error codes and the error values of the layers below the actors
// (the DAG, the pure cores, serde and the Kafka seam), which link no CAF.
// The actors carry the same codes in caf::error: see castor/error.hpp.

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace castor {

/// castor's error codes. Below the actors they travel in `castor::failure`;
/// the actors carry them in `caf::error` with category "castor"
/// (castor/error.hpp), each with a context string naming what and where.
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

/// An error: a code and what it is about ("topic 'words' does not exist").
/// Default-constructed, it is no error (like caf::error).
class failure {
public:
  failure() = default;
  failure(ec code, std::string what) : code_(code), what_(std::move(what)) {}

  ec code() const noexcept { return code_; }
  const std::string& what() const noexcept { return what_; }

  /// Whether this is an error.
  explicit operator bool() const noexcept { return code_ != ec::none; }

private:
  ec code_ = ec::none;
  std::string what_;
};

/// "unknown_topic: topic 'words' does not exist".
std::string render(const failure& f);

/// The code of `f` (ec::none for no error).
inline ec code_of(const failure& f) noexcept {
  return f.code();
}

/// What `f` says without its code.
inline const std::string& message_of(const failure& f) noexcept {
  return f.what();
}

/// A `T`, or the failure that prevented it.
template <class T>
class result {
public:
  result(T value) : data_(std::in_place_index<0>, std::move(value)) {}
  result(failure f) : data_(std::in_place_index<1>, std::move(f)) {}

  /// Whether it holds a value.
  explicit operator bool() const noexcept { return data_.index() == 0; }

  T& operator*() & { return std::get<0>(data_); }
  const T& operator*() const& { return std::get<0>(data_); }
  T&& operator*() && { return std::get<0>(std::move(data_)); }
  T* operator->() { return &std::get<0>(data_); }
  const T* operator->() const { return &std::get<0>(data_); }

  /// The failure (only when it holds no value).
  const failure& error() const& { return std::get<1>(data_); }
  failure&& error() && { return std::get<1>(std::move(data_)); }

  /// Whether it holds a value equal to `x`.
  friend bool operator==(const result& r, const T& x) { return r && *r == x; }

private:
  std::variant<T, failure> data_;
};

} // namespace castor
