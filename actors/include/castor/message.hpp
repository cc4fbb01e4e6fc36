// SPDX-License-Identifier: Apache-2.0
#pragma once

// Kafka messages as castor sees them: consumed messages (owning a
// librdkafka message, or owned bytes in tests), the views deserializers
// read, and the records serializers write.

#include "castor/time.hpp"

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace castor {

/// How a message's timestamp was set.
enum class timestamp_type : uint8_t {
  /// No timestamp (old message format).
  none,
  /// Set by the producer.
  create_time,
  /// Set by the broker when it appended the message.
  log_append_time,
};

const char* to_string(timestamp_type type) noexcept;

/// A header a producer record carries; a null value is valid.
struct header {
  std::string name;
  std::optional<std::string> value;

  friend bool operator==(const header&, const header&) = default;
};

/// A header as seen in a consumed message (views into the message).
struct header_view {
  std::string_view name;
  std::optional<std::string_view> value;
};

/// The headers of a consumed message, read in place.
class headers_view {
public:
  headers_view() = default;
  explicit headers_view(rd_kafka_headers_t* raw) : raw_(raw) {}
  explicit headers_view(const std::vector<header>* owned) : owned_(owned) {}

  size_t size() const noexcept;
  bool empty() const noexcept { return size() == 0; }

  /// The i-th header, in message order.
  header_view operator[](size_t i) const;

  /// The last header named `name`, if any (Kafka allows repeated names).
  std::optional<header_view> find(std::string_view name) const;

private:
  rd_kafka_headers_t* raw_ = nullptr;
  const std::vector<header>* owned_ = nullptr;
};

/// What a deserializer reads of one message: its full metadata and views
/// into its bytes. Valid during the cycle the message is released in.
struct message_view {
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  /// The message's timestamp; empty when it has none.
  std::optional<castor::timestamp> time;
  castor::timestamp_type time_type = castor::timestamp_type::none;
  /// Empty for a null key (distinct from an empty key).
  std::optional<std::string_view> key;
  /// Empty for a null value (a tombstone), distinct from an empty value.
  std::optional<std::string_view> value;
  headers_view headers;
};

/// A message the consumer read, on its way to the DAG. Owns the librdkafka
/// message (no payload copy) or, when made by `make`, its own bytes.
class consumed_message {
public:
  consumed_message() = default;

  /// Takes ownership of `raw`, a message of partition `pid`.
  consumed_message(rd_kafka_message_t* raw, uint32_t pid) noexcept;

  /// A message with owned bytes (tests, synthetic input).
  static consumed_message make(uint32_t pid, int64_t offset,
                               std::optional<castor::timestamp> time,
                               std::optional<std::string> key,
                               std::optional<std::string> value,
                               std::vector<header> headers = {});

  consumed_message(consumed_message&& other) noexcept;
  consumed_message& operator=(consumed_message&& other) noexcept;
  consumed_message(const consumed_message&) = delete;
  consumed_message& operator=(const consumed_message&) = delete;
  ~consumed_message();

  /// The partition's number in the pipeline's partition table.
  uint32_t pid() const noexcept { return pid_; }
  int64_t offset() const noexcept { return offset_; }
  std::optional<castor::timestamp> time() const noexcept;
  castor::timestamp_type time_type() const noexcept { return time_type_; }
  std::optional<std::string_view> key() const noexcept;
  std::optional<std::string_view> value() const noexcept;
  headers_view headers() const;

  /// The time the orchestrator ordered the message by (its timestamp, or
  /// its predecessor's when it has none).
  castor::timestamp order_time{};

  /// The view a deserializer reads; `topic` and `partition` come from the
  /// partition table.
  message_view view(std::string_view topic, int32_t partition) const;

private:
  struct owned_parts {
    std::optional<std::string> key;
    std::optional<std::string> value;
    std::vector<header> headers;
  };

  void release() noexcept;

  rd_kafka_message_t* raw_ = nullptr;
  std::unique_ptr<owned_parts> owned_;
  uint32_t pid_ = 0;
  int64_t offset_ = 0;
  int64_t time_ms_ = -1;
  castor::timestamp_type time_type_ = castor::timestamp_type::none;
};

/// A message to produce: what serializers write.
struct producer_record {
  /// Empty: the sink's default topic.
  std::string topic;
  /// Empty: a null key.
  std::optional<std::string> key;
  /// Empty: a null value (a tombstone).
  std::optional<std::string> value;
  std::vector<header> headers;
  /// Empty: the producer's partitioner chooses.
  std::optional<int32_t> partition;
  /// Empty: the producer sets the time.
  std::optional<castor::timestamp> time;

  friend bool operator==(const producer_record&, const producer_record&) = default;
};

} // namespace castor
