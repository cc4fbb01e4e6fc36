// SPDX-License-Identifier: Apache-2.0
#pragma once

// Deserializers turn a cycle's messages for one source into the source's
// value; serializers turn a sink's value into producer records. Ready-made
// ones for bytes and strings here, JSON in castor/json.hpp.

#include "castor/record.hpp"

#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace castor {

/// Reads all of a cycle's messages for one source, in release order, and
/// returns the source's value. Throws `deserialize_error` (or any exception)
/// to reject the input.
template <class T>
using deserializer = std::function<T(std::span<const message_view>)>;

/// Appends the producer records for a sink's value.
template <class T>
using serializer = std::function<void(const T&, std::vector<producer_record>&)>;

/// A deserializer's rejection of the message at `index` in its span.
class deserialize_error : public std::runtime_error {
public:
  deserialize_error(size_t index, const std::string& what)
      : std::runtime_error(what), index_(index) {}

  size_t index() const noexcept { return index_; }

private:
  size_t index_;
};

/// An owned copy of a consumed message: for DAG values that keep messages
/// beyond their cycle.
struct kafka_record {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<castor::timestamp> time;
  castor::timestamp_type time_type = castor::timestamp_type::none;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<header> headers;

  static kafka_record copy_of(const message_view& view);

  friend bool operator==(const kafka_record&, const kafka_record&) = default;
};

namespace serde {

/// Every message, copied with all its metadata.
deserializer<std::vector<kafka_record>> records();

/// Every message as a view, without copying: the views are valid during the
/// cycle only, so only stream nodes (whose values live one cycle) may hold
/// them; a state that keeps them would dangle.
deserializer<std::vector<message_view>> views();

/// The values as strings; a null value (tombstone) is rejected.
deserializer<std::vector<std::string>> strings();

/// The values split on whitespace into words; null values are rejected.
deserializer<std::vector<std::string>> words();

/// The same words as views into the messages, without copying: valid during
/// the cycle only (like `views()`), so only stream nodes may hold them.
deserializer<std::vector<std::string_view>> word_views();

/// The records as they are (their topic, or the sink's default topic).
serializer<std::vector<producer_record>> records_out();

/// One record per string, as the value, with a null key.
serializer<std::vector<std::string>> strings_out();

/// One record per pair: key, value.
serializer<std::vector<std::pair<std::string, std::string>>> key_values_out();

} // namespace serde
} // namespace castor
