// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/actors.hpp"
#include "castor/commit_tracker.hpp"
#include "castor/defaults.hpp"
#include "castor/kafka/producer_client.hpp"
#include "castor/wakeup.hpp"

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
  duration retry_interval = defaults::producer_retry_interval;
  bool event_driven = true;
  /// Topics known in advance (sinks' default topics, the dead-letter
  /// topic): their metadata comes with the first request to the cluster,
  /// instead of at librdkafka's next periodic scan (up to a second later).
  std::vector<std::string> topics;

  caf::error validate() const;
};

struct producer_state {
  static inline const char* name = "castor.producer";

  using pointer = producer_actor::stateful_pointer<producer_state>;

  // Not an aggregate: CAF would try to build the state from the actor pointer.
  producer_state() = default;

  caf::error start(pointer self);

  /// Enqueues what is pending, in order, until librdkafka's queue is full.
  void produce_pending(pointer self);

  /// Serves delivery reports (on the actor's thread).
  void poll();

  /// A delivery report.
  void on_delivery(const kafka::delivery& d);

  /// Answers the flushes and the revocations' commit waits that are done or
  /// out of time.
  void check_waits(pointer self);

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
  std::shared_ptr<wakeup> wake = std::make_shared<wakeup>();
  std::deque<pending_batch> pending;
  std::vector<flush_request> flushes;
  /// Waits for partitions' positions to become committable.
  struct commit_wait {
    std::vector<partition_position> positions;
    /// Past it, what is committable is answered (the asker gave up).
    caf::actor_clock::time_point deadline;
    caf::typed_response_promise<std::vector<int64_t>> promise;
  };
  std::vector<commit_wait> commit_waits;
  bool retry_armed = false;
  /// The first delivery that failed for good (stops the pipeline).
  caf::error delivery_failure;
  /// What may be committed: batches up to their records' delivery.
  commit_tracker tracker;
  pipeline_stats stats;

  /// The counters of `topic` in `stats` (the last one found is cached: a
  /// release's records mostly share a topic).
  topic_counters& counters_for(std::string_view topic);
  size_t last_topic = 0;
  /// Last: destroyed first, before what its delivery reports touch.
  std::unique_ptr<kafka::producer_client> client;
};

/// The producer: one librdkafka producer; a full queue delays its answers
/// (backpressure), a failed delivery stops it with an error naming the record.
/// It tracks which offsets are committable (`commit_atom`). Unless the
/// properties set `enable.idempotence`, `acks` or the in-flight limit, it
/// turns idempotence on, so librdkafka's retries neither reorder nor
/// duplicate records.
producer_actor::behavior_type producer(producer_state::pointer self,
                                       producer_config config);

} // namespace castor
