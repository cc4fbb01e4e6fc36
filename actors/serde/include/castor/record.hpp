// SPDX-License-Identifier: Apache-2.0
#pragma once

// Kafka messages as DAG code sees them: the views deserializers read and
// the records serializers write. (The messages the consumer owns on their
// way to the DAG are castor::kafka's consumed_message.)

#include "castor/time.hpp"

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

/// The headers of a consumed message, read in place: from castor's own
/// `header`s, or through a `source` (the Kafka seam reads librdkafka's
/// headers this way, so that DAG code never sees librdkafka, and only
/// when they are read). Like the message it views, it is read by one
/// thread at a time: the one running the DAG.
class headers_view {
public:
  /// How to read headers kept elsewhere.
  struct source {
    size_t (*count)(const void* data) noexcept;
    header_view (*at)(const void* data, size_t i) noexcept;
  };

  headers_view() = default;
  headers_view(const source* src, const void* headers) : src_(src), data_(headers) {}
  explicit headers_view(const std::vector<header>* owned) : owned_(owned) {}

  size_t size() const noexcept;
  bool empty() const noexcept { return size() == 0; }

  /// The i-th header, in message order.
  header_view operator[](size_t i) const;

  /// The last header named `name`, if any (Kafka allows repeated names).
  std::optional<header_view> find(std::string_view name) const;

  /// Owned copies of the headers, in message order, with room for `more`.
  std::vector<header> copy(size_t more = 0) const;

private:
  const source* src_ = nullptr;
  const void* data_ = nullptr;
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
