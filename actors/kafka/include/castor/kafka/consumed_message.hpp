// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/record.hpp"
#include "castor/time.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct rd_kafka_message_s;
struct rd_kafka_headers_s;

namespace castor {

/// A message the consumer read, on its way to the DAG. Owns the librdkafka
/// message (no payload copy) or, when made by `make`, its own bytes. The
/// DAG never sees it: deserializers read its `view`.
class consumed_message {
public:
  consumed_message() = default;

  /// Takes ownership of `raw`, a message of partition `pid` (the Kafka
  /// seam makes these).
  consumed_message(rd_kafka_message_s* raw, uint32_t pid) noexcept;

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
  /// The timestamp; empty for -1, Kafka's "no timestamp", and for values
  /// castor cannot take as a time (more than max_timestamp_ms from the
  /// epoch: see `time_out_of_range`). Every other value, those before 1970
  /// included, is a time.
  std::optional<castor::timestamp> time() const noexcept;

  /// The message carries a timestamp beyond max_timestamp_ms (it reads as
  /// none): the orchestrator warns and counts it.
  bool time_out_of_range() const noexcept {
    return time_type_ != castor::timestamp_type::none && time_ms_ != -1 &&
           !valid_timestamp_ms(time_ms_);
  }
  castor::timestamp_type time_type() const noexcept { return time_type_; }
  std::optional<std::string_view> key() const noexcept;
  std::optional<std::string_view> value() const noexcept;
  /// The bytes of the key and the value (what the message counts against
  /// the orchestrator's hold: watermark_config::unit_bytes), at most 4 GiB.
  size_t bytes() const noexcept { return bytes_; }
  /// Read from librdkafka when they are read, not before (see
  /// parsed_headers).
  headers_view headers() const;

  /// librdkafka's parsed headers of the message, or null when it has none
  /// (or owns its bytes); parses them on the first call.
  const rd_kafka_headers_s* parsed_headers() const noexcept;

  /// The time the orchestrator ordered the message by (its timestamp, or
  /// its predecessor's when it has none).
  castor::timestamp order_time{};

  /// The view a deserializer reads; `topic` and `partition` come from the
  /// partition table.
  message_view view(std::string_view topic, int32_t partition) const;

  /// Asks the CPU to bring librdkafka's message (where `view` reads the
  /// key and the value from) into its cache: librdkafka allocated it in
  /// its broker thread, and the thread running the DAG first touches it
  /// in `view`, a cache miss per message otherwise (perf on case 3p: 99 %
  /// of `view`'s samples on that load, 16 % of castor's own). A hint only.
  void prefetch() const noexcept {
    if (raw_ != nullptr) {
      auto* p = reinterpret_cast<const char*>(raw_);
      __builtin_prefetch(p);
      __builtin_prefetch(p + 64); // rd_kafka_message_t is 72 bytes
    }
  }

private:
  struct owned_parts {
    std::optional<std::string> key;
    std::optional<std::string> value;
    std::vector<header> headers;
  };

  void release() noexcept;

  rd_kafka_message_s* raw_ = nullptr;
  std::unique_ptr<owned_parts> owned_;
  uint32_t pid_ = 0;
  /// bytes(), in what would be padding before offset_.
  uint32_t bytes_ = 0;
  int64_t offset_ = 0;
  int64_t time_ms_ = -1;
  castor::timestamp_type time_type_ = castor::timestamp_type::none;
  /// librdkafka found no headers (it does not remember that itself).
  mutable bool no_headers_ = false;
};

} // namespace castor
