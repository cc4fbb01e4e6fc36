// SPDX-License-Identifier: Apache-2.0
#pragma once

// Kafka messages as DAG code sees them: the views deserializers read and
// the records serializers write. (The messages the consumer owns on their
// way to the DAG are castor::kafka's consumed_message.)

#include "castor/time.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
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

/// A record's key or value: bytes of its own, or bytes of one of the
/// cycle's input messages taken without a copy (`borrow`).
///
/// A borrowed key or value points into the input message it came from:
/// castor keeps the messages of a cycle until the records the cycle made
/// are produced (the record batch holds their release). So `borrow` only a
/// `message_view`'s key or value (or a part of one, such as a word of
/// `serde::word_views()`), in the serializer of the cycle it came in, from
/// the cycle's own stream values (never views a state node kept); anything
/// else must be owned. A copy of a `bytes` owns its bytes, and so does one
/// that is changed (`resize`); a move keeps a borrowed one borrowed.
/// Borrowed bytes end where the view ends: no terminating NUL.
class bytes {
public:
  bytes() = default;
  bytes(std::string owned) noexcept : owned_(std::move(owned)) {}
  /// A null pointer is an empty value (not a null one: that is an empty
  /// std::optional).
  bytes(const char* owned) : owned_(owned != nullptr ? owned : "") {}
  explicit bytes(std::string_view owned) : owned_(owned) {}

  /// The bytes of `input`, not copied: see the class's comment.
  static bytes borrow(std::string_view input) noexcept {
    bytes result;
    result.borrowed_ = input.data();
    result.size_ = input.size();
    return result;
  }

  bytes(const bytes& other) : owned_(other.view()) {}
  bytes& operator=(const bytes& other) {
    if (this != &other) {
      owned_.assign(other.data(), other.size());
      borrowed_ = nullptr;
    }
    return *this;
  }
  bytes(bytes&& other) noexcept = default;
  bytes& operator=(bytes&& other) noexcept = default;

  const char* data() const noexcept {
    return borrowed_ != nullptr ? borrowed_ : owned_.data();
  }
  size_t size() const noexcept { return borrowed_ != nullptr ? size_ : owned_.size(); }
  bool empty() const noexcept { return size() == 0; }
  std::string_view view() const noexcept { return {data(), size()}; }
  operator std::string_view() const noexcept { return view(); }
  std::string str() const { return std::string{view()}; }
  /// True while the bytes are an input message's.
  bool borrowed() const noexcept { return borrowed_ != nullptr; }

  /// Makes the bytes its own (a copy of borrowed ones), then resizes them.
  void resize(size_t n) {
    if (borrowed_ != nullptr) {
      owned_.assign(borrowed_, std::min(n, size_));
      borrowed_ = nullptr;
    }
    owned_.resize(n);
  }

  friend bool operator==(const bytes& a, const bytes& b) noexcept {
    return a.view() == b.view();
  }
  friend bool operator==(const bytes& a, std::string_view b) noexcept {
    return a.view() == b;
  }
  friend bool operator==(const bytes& a, const std::string& b) noexcept {
    return a.view() == std::string_view{b};
  }
  friend bool operator==(const bytes& a, const char* b) noexcept {
    return a.view() == std::string_view{b};
  }

private:
  std::string owned_;
  const char* borrowed_ = nullptr;
  size_t size_ = 0;
};

std::ostream& operator<<(std::ostream& out, const bytes& b);

/// Where a record's input came from, written by the producer as the
/// headers `castor.topic`, `castor.partition`, `castor.offset` and, when
/// the input had a time, `castor.timestamp` (milliseconds since the epoch),
/// in that order after the record's own `headers` (what `merge` sets; a
/// dead letter's castor.dlq.* headers are among its own, so these follow
/// them).
/// The same four as `header`s cost a vector and three strings per record
/// before librdkafka copies them into its own list (README, benchmarks).
struct record_origin {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<castor::timestamp> time;

  friend bool operator==(const record_origin&, const record_origin&) = default;
};

/// A message to produce: what serializers write.
struct producer_record {
  /// Empty: the sink's default topic.
  std::string topic;
  /// Empty: a null key.
  std::optional<bytes> key;
  /// Empty: a null value (a tombstone).
  std::optional<bytes> value;
  std::vector<header> headers;
  /// Set: the producer adds the castor.* headers naming it after `headers`
  /// (see record_origin; `all_headers` lists them as they go out).
  std::optional<record_origin> origin;
  /// Empty: the producer's partitioner chooses.
  std::optional<int32_t> partition;
  /// Empty: the producer sets the time.
  std::optional<castor::timestamp> time;

  friend bool operator==(const producer_record&, const producer_record&) = default;
};

/// The headers of `r` as the producer writes them: its own, then those of
/// its origin.
std::vector<header> all_headers(const producer_record& r);

/// Calls `f(name, value)` (two string_views) for each header `origin`
/// makes, in order, formatting the numbers on the stack (a value is valid
/// during its call only).
template <class F>
void for_each_origin_header(const record_origin& origin, F&& f) {
  char digits[24];
  auto number = [&](int64_t x) {
    auto end = std::to_chars(digits, digits + sizeof digits, x).ptr;
    return std::string_view{digits, static_cast<size_t>(end - digits)};
  };
  f(std::string_view{"castor.topic"}, std::string_view{origin.topic});
  f(std::string_view{"castor.partition"}, number(origin.partition));
  f(std::string_view{"castor.offset"}, number(origin.offset));
  if (origin.time)
    f(std::string_view{"castor.timestamp"}, number(to_millis(*origin.time)));
}

// Records move when their vector grows: a copy would make borrowed bytes
// owned (and cost what borrowing saves).
static_assert(std::is_nothrow_move_constructible_v<producer_record>);

} // namespace castor
