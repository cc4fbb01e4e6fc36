// SPDX-License-Identifier: Apache-2.0
#pragma once

// The librdkafka end of the seam: RAII handles, checked configuration,
// librdkafka errors as castor failures, and metadata. Only castor's Kafka
// layer and its test tools include this (it brings in rdkafka.h); the
// actors use the clients (consumer_client.hpp, producer_client.hpp).

#include "castor/failure.hpp"
#include "castor/kafka/config.hpp"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

/// A librdkafka error as a castor failure: `ec::fatal_kafka_error` for fatal
/// ones, `ec::unknown_topic`, `ec::broker_timeout`, `ec::broker_unreachable`
/// where they apply, else `ec::kafka_error`; the context names what failed.
failure to_failure(rd_kafka_resp_err_t err, const std::string& context);

/// librdkafka's log callback of castor's clients: its lines go to castor's
/// logger (errors as warnings: castor decides what is fatal).
void log_line(const rd_kafka_t* rk, int level, const char* facility, const char* text);

/// A configuration with every property set, checked: a property librdkafka
/// rejects gives `ec::kafka_config` naming the property, its value and
/// librdkafka's reason. `what` names the client in messages ("consumer").
/// librdkafka's log lines go to castor's logger.
result<conf_ptr> make_conf(const properties& props, const std::string& what);

/// Sets one property on `conf`, checked as in `make_conf`.
failure set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
            const std::string& what);

/// A client from a configuration (which it takes over).
result<handle_ptr> make_client(rd_kafka_type_t type, conf_ptr conf);

/// Destroys `client` with `rd_kafka_destroy_flags(flags)`, waiting at most
/// `timeout`: librdkafka may wait much longer for requests in flight to a
/// broker that is gone (socket.timeout.ms); past the timeout the destruction
/// finishes on a thread of its own and the caller goes on. Returns whether
/// it finished in time.
bool destroy_within(handle_ptr client, std::chrono::milliseconds timeout, int flags = 0);

/// Number of partitions of `topic`, asking the cluster's metadata. An unknown
/// topic gives `ec::unknown_topic`; no answer within `timeout` gives
/// `ec::broker_unreachable`; `cancel` set while waiting gives `ec::stopped`.
result<int32_t> partition_count(rd_kafka_t* rk, const std::string& topic,
                                std::chrono::milliseconds timeout,
                                const cancel_flag& cancel = {});

/// The leader broker of each partition of `topic` (by partition; -1 where
/// none), failing as `partition_count` does.
result<std::vector<int32_t>> partition_leaders(rd_kafka_t* rk, const std::string& topic,
                                               std::chrono::milliseconds timeout,
                                               const cancel_flag& cancel = {});

namespace detail {

/// Calls `query(ms)` in slices (200 ms, then doubling up to 3.2 s) until it
/// answers something other than "no answer yet", `timeout` passes
/// (RD_KAFKA_RESP_ERR__TIMED_OUT) or `cancel` is set
/// (RD_KAFKA_RESP_ERR__DESTROY).
rd_kafka_resp_err_t in_slices(std::chrono::milliseconds timeout,
                              const cancel_flag& cancel,
                              const std::function<rd_kafka_resp_err_t(int)>& query);

/// `ec::stopped`: "the pipeline stopped while <what>".
failure cancelled(const std::string& what);

} // namespace detail

} // namespace castor::kafka
