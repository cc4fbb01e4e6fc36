// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/actors.hpp"
#include "castor/detail/wakeup.hpp"
#include "castor/kafka.hpp"
#include "castor/start_policy.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace castor {

/// What the consumer reads.
struct consumer_config {
  struct topic {
    std::string name;
    /// Index of the DAG source it feeds.
    uint32_t source = 0;
    start_policy start;
  };

  /// librdkafka consumer properties (passed through; see pipeline_config).
  kafka::properties properties;
  std::vector<topic> topics;
  size_t batch_size = 5000;
  duration startup_timeout = std::chrono::seconds{10};
  bool event_driven = true;

  caf::error validate() const;
};

struct consumer_state {
  static inline const char* name = "castor.consumer";

  // Not an aggregate: CAF would try to build the state from the actor pointer.
  consumer_state() = default;

  ~consumer_state();

  /// Resolves start offsets, assigns, and enables wake-ups.
  caf::error start(consumer_actor::stateful_pointer<consumer_state> self);

  /// Reads what librdkafka holds (within the credit) and sends one batch.
  void drain(consumer_actor::stateful_pointer<consumer_state> self);

  void apply(bool pause, const std::vector<uint32_t>& pids);

  /// One partition's queue: castor reads each partition from its own queue,
  /// so pausing one is just not reading it (librdkafka stops fetching when
  /// the queue holds queued.min.messages or queued.max.messages.kbytes)
  /// and resuming wastes nothing.
  struct partition_queue {
    kafka::queue_ptr queue;
    bool paused = false;
  };

  consumer_config config;
  orchestrator_actor orchestrator;
  kafka::handle_ptr client;
  /// The consumer queue: errors that concern no partition.
  kafka::queue_ptr queue;
  std::vector<partition_queue> partitions;
  /// Where the next drain starts reading, for fairness.
  size_t next_partition = 0;
  std::shared_ptr<detail::wakeup> wake = std::make_shared<detail::wakeup>();
  partition_table_ptr table;
  std::unordered_map<std::string, uint32_t> first_pid;
  std::vector<rd_kafka_message_t*> buffer;
  bool in_flight = false;
  /// Messages the orchestrator accepts in the next batch.
  size_t allowance = 0;
};

/// The consumer: one librdkafka consumer for every partition of every source
/// topic (manual assignment); sends batches to `orchestrator`, one in flight.
consumer_actor::behavior_type
consumer(consumer_actor::stateful_pointer<consumer_state> self, consumer_config config,
         orchestrator_actor orchestrator);

} // namespace castor
