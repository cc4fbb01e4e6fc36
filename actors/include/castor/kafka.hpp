// SPDX-License-Identifier: Apache-2.0
#pragma once

// The seam in front of librdkafka: RAII handles, checked configuration,
// librdkafka errors mapped to castor's, the broker queries start-up needs,
// and librdkafka's mock cluster for tests and local development.

#include "castor/error.hpp"
#include "castor/message.hpp"
#include "castor/start_policy.hpp"

#include <caf/expected.hpp>
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct rd_kafka_mock_cluster_s;

namespace castor::kafka {

struct handle_deleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
struct conf_deleter {
  void operator()(rd_kafka_conf_t* conf) const noexcept { rd_kafka_conf_destroy(conf); }
};
struct queue_deleter {
  void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
};
struct partition_list_deleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const noexcept {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
struct topic_deleter {
  void operator()(rd_kafka_topic_t* t) const noexcept { rd_kafka_topic_destroy(t); }
};
struct message_deleter {
  void operator()(rd_kafka_message_t* m) const noexcept { rd_kafka_message_destroy(m); }
};

using handle_ptr = std::unique_ptr<rd_kafka_t, handle_deleter>;
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;
using queue_ptr = std::unique_ptr<rd_kafka_queue_t, queue_deleter>;
using partition_list_ptr =
    std::unique_ptr<rd_kafka_topic_partition_list_t, partition_list_deleter>;
using message_ptr = std::unique_ptr<rd_kafka_message_t, message_deleter>;
using topic_ptr = std::unique_ptr<rd_kafka_topic_t, topic_deleter>;

/// librdkafka properties, passed through untouched.
using properties = std::map<std::string, std::string>;

/// A librdkafka error as a castor error: `ec::fatal_kafka_error` for fatal
/// ones, `ec::unknown_topic`, `ec::broker_timeout`, `ec::broker_unreachable`
/// where they apply, else `ec::kafka_error`; the context names what failed.
caf::error to_error(rd_kafka_resp_err_t err, const std::string& context);

/// Whether a property holds a secret (its name contains password, secret,
/// key, token or credentials): messages and printed configurations mask it.
bool is_secret(const std::string& key);

/// Whether `name` is a legal Kafka topic name: 1 to 249 characters of
/// a-z, A-Z, 0-9, '.', '_' and '-', and neither "." nor "..".
bool valid_topic_name(std::string_view name);

/// A topic to create with its partition count.
struct topic_spec {
  std::string name;
  int partitions = 1;
};

/// The most partitions a topic spec may ask for.
inline constexpr int max_topic_partitions = 10000;

/// Parses "NAME:PARTITIONS" (a legal topic name, 1 to max_topic_partitions
/// partitions, nothing else): "words:4". `ec::invalid_config` saying what is
/// wrong otherwise ("a:4x", "c:1:2", ":3", "a:0").
caf::expected<topic_spec> parse_topic_spec(std::string_view text);

/// A configuration with every property set, checked: a property librdkafka
/// rejects gives `ec::kafka_config` naming the property, its value and
/// librdkafka's reason. `what` names the client in messages ("consumer").
caf::expected<conf_ptr> make_conf(const properties& props, const std::string& what);

/// Sets one property on `conf`, checked as in `make_conf`.
caf::error set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
               const std::string& what);

/// A client from a configuration (which it takes over).
caf::expected<handle_ptr> make_client(rd_kafka_type_t type, conf_ptr conf);

/// Destroys `client` with `rd_kafka_destroy_flags(flags)`, waiting at most
/// `timeout`: librdkafka may wait much longer for requests in flight to a
/// broker that is gone (socket.timeout.ms); past the timeout the destruction
/// finishes on a thread of its own and the caller goes on. Returns whether
/// it finished in time.
bool destroy_within(handle_ptr client, std::chrono::milliseconds timeout, int flags = 0);

/// Set when the caller should give up waiting (a stop during start-up).
using cancel_flag = std::shared_ptr<const std::atomic<bool>>;

/// The size librdkafka counts a record at against `message.max.bytes`:
/// key, value and headers plus the record's largest framing.
size_t record_wire_size(const producer_record& r);

/// The producer's `message.max.bytes` in `props` (librdkafka's default,
/// 1000000, when unset).
size_t max_message_bytes(const properties& props);

/// Number of partitions of `topic`, asking the cluster's metadata. An unknown
/// topic gives `ec::unknown_topic`; no answer within `timeout` gives
/// `ec::broker_unreachable`; `cancel` set while waiting gives `ec::stopped`.
caf::expected<int32_t> partition_count(rd_kafka_t* rk, const std::string& topic,
                                       std::chrono::milliseconds timeout,
                                       const cancel_flag& cancel = {});

/// The broker queries of start-up, through a client. Reads timestamps for
/// the bisection fallback with a separate consumer it creates on first use
/// from `props`.
class broker_queries final : public partition_queries {
public:
  broker_queries(rd_kafka_t* rk, properties props, std::chrono::milliseconds timeout,
                 cancel_flag cancel = {});
  ~broker_queries() override;

  caf::expected<std::pair<int64_t, int64_t>>
  watermarks(const topic_partition& tp) override;
  caf::expected<int64_t> offset_for_time(const topic_partition& tp, timestamp t) override;
  caf::expected<std::optional<int64_t>> committed(const topic_partition& tp) override;
  caf::expected<std::optional<timestamp>> timestamp_at(const topic_partition& tp,
                                                       int64_t offset) override;

private:
  rd_kafka_t* rk_;
  properties props_;
  std::chrono::milliseconds timeout_;
  cancel_flag cancel_;
  handle_ptr probe_;
};

/// Kafka protocol API keys, for the mock cluster's request error injection
/// (`rd_kafka_mock_push_request_errors`; librdkafka keeps its names private).
inline constexpr int16_t api_produce = 0;
inline constexpr int16_t api_fetch = 1;

/// librdkafka's mock cluster: a Kafka-protocol server on 127.0.0.1 that real
/// clients in this and other processes reach over TCP. Data lives in memory.
/// For tests and local development only.
class mock_cluster {
public:
  /// Starts a cluster of `brokers` brokers.
  static caf::expected<std::unique_ptr<mock_cluster>> start(int brokers = 1);

  ~mock_cluster();
  mock_cluster(const mock_cluster&) = delete;
  mock_cluster& operator=(const mock_cluster&) = delete;

  /// "127.0.0.1:port[,...]".
  const std::string& bootstrap_servers() const noexcept { return bootstrap_; }

  /// Creates a topic with `partitions` partitions.
  caf::error create_topic(const std::string& name, int partitions);

  /// Logs a warning whenever the cluster drops the oldest data of one of
  /// these topics' partitions (the mock keeps at most 5 MB per partition),
  /// so that nobody mistakes it for a consumer losing data. Checks every
  /// few seconds on a thread of its own, until the cluster is destroyed.
  void watch_retention(std::vector<topic_spec> topics);

  /// The underlying cluster, for fault injection.
  ::rd_kafka_mock_cluster_s* get() const noexcept { return cluster_; }

private:
  mock_cluster() = default;
  handle_ptr owner_;
  ::rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstrap_;
  struct watcher;
  std::unique_ptr<watcher> watcher_;
};

} // namespace castor::kafka
