// SPDX-License-Identifier: Apache-2.0
#pragma once

// librdkafka's mock cluster: a Kafka-protocol server on 127.0.0.1 that real
// clients in this and other processes reach over TCP. Data lives in memory,
// at most 5 MB (or 100,000 message sets) per partition: older data is
// dropped. For tests, benchmarks, demos and `castor broker`; nothing else in
// castor depends on it.

#include "castor/failure.hpp"
#include "castor/kafka/config.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct rd_kafka_mock_cluster_s;

namespace castor::testing {

/// Kafka protocol API keys, for request error injection
/// (`push_request_errors`; librdkafka keeps its names private).
inline constexpr int16_t api_produce = 0;
inline constexpr int16_t api_fetch = 1;

class mock_cluster {
public:
  /// Starts a cluster of `brokers` brokers.
  static result<std::unique_ptr<mock_cluster>> start(int brokers = 1);

  ~mock_cluster();
  mock_cluster(const mock_cluster&) = delete;
  mock_cluster& operator=(const mock_cluster&) = delete;

  /// "127.0.0.1:port[,...]".
  const std::string& bootstrap_servers() const noexcept { return bootstrap_; }

  /// Creates a topic with `partitions` partitions.
  failure create_topic(const std::string& name, int partitions);

  /// Logs a warning whenever the cluster drops the oldest data of one of
  /// these topics' partitions, so that nobody mistakes it for a consumer
  /// losing data. Checks every few seconds on a thread of its own, until the
  /// cluster is destroyed.
  void watch_retention(std::vector<kafka::topic_spec> topics);

  // -- fault injection --------------------------------------------------------

  /// Takes broker `id` down (connections closed and refused) or up again.
  failure set_down(bool down, int32_t id = 1);

  /// Every request to broker `id` takes `rtt` longer.
  failure set_rtt(std::chrono::milliseconds rtt, int32_t id = 1);

  /// The next requests of protocol API `api` fail with these librdkafka
  /// error codes (rd_kafka_resp_err_t values), one each.
  void push_request_errors(int16_t api, const std::vector<int>& errors);

  /// Pushes `count` retriable errors on fetch (not leader for partition)
  /// and on produce requests (not enough replicas): clients retry them.
  void push_retriable_errors(int count);

  /// The underlying cluster, for what the calls above do not cover.
  ::rd_kafka_mock_cluster_s* get() const noexcept { return cluster_; }

private:
  mock_cluster() = default;
  struct owner;
  std::unique_ptr<owner> owner_;
  ::rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstrap_;
  struct watcher;
  std::unique_ptr<watcher> watcher_;
};

} // namespace castor::testing
