// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/actors.hpp"
#include "castor/detail/wakeup.hpp"
#include "castor/kafka.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace castor {

struct producer_config {
  /// librdkafka producer properties, passed through untouched.
  kafka::properties properties;
  /// Wait before retrying records that met a full queue (delivery reports
  /// also trigger a retry).
  duration retry_interval = std::chrono::milliseconds{5};
  bool event_driven = true;
  /// Topics known in advance (sinks' default topics, the dead-letter
  /// topic): their metadata comes with the first request to the cluster,
  /// instead of at librdkafka's next periodic scan (up to a second later).
  std::vector<std::string> topics;

  caf::error validate() const;
};

struct producer_state {
  static inline const char* name = "castor.producer";

  // Not an aggregate: CAF would try to build the state from the actor pointer.
  producer_state() = default;

  ~producer_state();

  caf::error start(producer_actor::stateful_pointer<producer_state> self);

  /// Enqueues what is pending, in order, until librdkafka's queue is full.
  void produce_pending(producer_actor::stateful_pointer<producer_state> self);

  /// Serves delivery reports (callbacks run here, on the actor's thread).
  void poll();

  /// Answers flush requests that are done or out of time.
  void check_flushes(producer_actor::stateful_pointer<producer_state> self);

  /// librdkafka's delivery report callback.
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque);

  struct pending_batch {
    record_batch_ptr batch;
    size_t next = 0;
    /// The batch's id in the commit tracker.
    uint64_t id = 0;
    caf::typed_response_promise<ack_atom> promise;
  };

  struct flush_request {
    caf::actor_clock::time_point deadline;
    caf::typed_response_promise<uint64_t> promise;
  };

  producer_config config;
  kafka::handle_ptr client;
  kafka::queue_ptr main_queue;
  /// Handles of the topics known in advance (kept for the client's life).
  std::vector<kafka::topic_ptr> known_topics;
  std::shared_ptr<detail::wakeup> wake = std::make_shared<detail::wakeup>();
  std::deque<pending_batch> pending;
  std::vector<flush_request> flushes;
  bool retry_armed = false;
  caf::error failure;
  /// What may be committed: batches up to their records' delivery.
  commit_tracker tracker;
  pipeline_stats stats;

  /// The counters of `topic` in `stats` (the last one found is cached: a
  /// release's records mostly share a topic).
  topic_counters& counters_for(std::string_view topic);
  size_t last_topic = 0;
};

/// The producer: one librdkafka producer; a full queue delays its answers
/// (backpressure), a failed delivery stops it with an error naming the record.
/// It tracks which offsets are committable (`commit_atom`). Unless the
/// properties set `enable.idempotence`, `acks` or the in-flight limit, it
/// turns idempotence on, so librdkafka's retries neither reorder nor
/// duplicate records.
producer_actor::behavior_type
producer(producer_actor::stateful_pointer<producer_state> self, producer_config config);

} // namespace castor
