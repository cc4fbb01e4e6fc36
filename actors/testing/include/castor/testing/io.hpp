// SPDX-License-Identifier: Apache-2.0
#pragma once

// Writing input and reading output against a Kafka cluster (the mock one in
// tests, benchmarks and examples): plain librdkafka clients behind a small
// interface, so that no test or tool writes this again.

#include "castor/failure.hpp"
#include "castor/kafka/config.hpp"
#include "castor/record.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace castor::testing {

/// A record as written or read back, with its timestamp in milliseconds.
struct record {
  record() = default;
  record(std::string topic, int32_t partition, std::optional<std::string> key,
         std::optional<std::string> value, int64_t time_ms,
         std::vector<header> headers = {})
      : topic(std::move(topic)), partition(partition), key(std::move(key)),
        value(std::move(value)), time_ms(time_ms), headers(std::move(headers)) {}

  std::string topic;
  /// -1: librdkafka's partitioner chooses.
  int32_t partition = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  int64_t time_ms = 0;
  std::vector<header> headers;
  /// Set when read back.
  int64_t offset = -1;
};

/// The value of header `name`, if any.
std::optional<std::string> header_of(const record& r, const std::string& name);

/// A producer that writes records with chosen partitions, timestamps and
/// headers, waiting when librdkafka's queue is full.
class writer {
public:
  /// `extra` adds librdkafka producer properties (linger.ms, compression).
  static result<std::unique_ptr<writer>> make(const std::string& bootstrap,
                                              const kafka::properties& extra = {});
  ~writer();

  failure write(const record& r);

  /// Waits until everything written is delivered (or `timeout` passed).
  failure flush(std::chrono::milliseconds timeout = std::chrono::seconds{60});

  struct impl;

private:
  explicit writer(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Writes `records` in order and waits for every delivery.
failure produce(const std::string& bootstrap, const std::vector<record>& records,
                const kafka::properties& extra = {});

/// Reads `topic` from the beginning until `count` records arrived (or
/// `timeout` passed); returns them in (partition, offset) order of arrival.
result<std::vector<record>>
read(const std::string& bootstrap, const std::string& topic, size_t count,
     std::chrono::milliseconds timeout = std::chrono::seconds{20});

/// Reads everything `topic` holds now: from the beginning to the end of
/// every partition (or until `timeout`).
result<std::vector<record>>
read_all(const std::string& bootstrap, const std::string& topic,
         std::chrono::milliseconds timeout = std::chrono::seconds{20});

/// The low and high offsets of each partition of `topic`.
result<std::vector<std::pair<int64_t, int64_t>>>
watermarks(const std::string& bootstrap, const std::string& topic, int partitions);

/// The committed offsets of `group` on `topic`'s partitions (-1001 where
/// none).
result<std::vector<int64_t>> committed(const std::string& bootstrap,
                                       const std::string& group, const std::string& topic,
                                       int partitions);

} // namespace castor::testing
