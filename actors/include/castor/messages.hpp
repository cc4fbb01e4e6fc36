// SPDX-License-Identifier: Apache-2.0
#pragma once

// The messages castor's actors exchange, with their inspect overloads.
// Batches travel as shared pointers to local-only structs: they own
// librdkafka messages and never leave the process.

#include "castor/commit_tracker.hpp"
#include "castor/message.hpp"
#include "castor/time.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace castor {

// -- atoms ----------------------------------------------------------------------

/// librdkafka's queue became non-empty (consumer) or has delivery reports
/// (producer).
using wake_atom = caf::atom_constant<caf::atom("wake")>;
/// Pause the listed partitions.
using pause_atom = caf::atom_constant<caf::atom("pause")>;
/// Resume the listed partitions.
using resume_atom = caf::atom_constant<caf::atom("resume")>;
/// Asks for counters.
using stats_atom = caf::atom_constant<caf::atom("stats")>;
/// Starts a component (with what it needs).
using start_atom = caf::atom_constant<caf::atom("start")>;
/// Stops a pipeline (ordered shutdown).
using stop_atom = caf::atom_constant<caf::atom("stop")>;
/// Asks a component to finish what is in flight and answer when done.
using drain_atom = caf::atom_constant<caf::atom("drain")>;
/// Asks the producer to flush.
using flush_atom = caf::atom_constant<caf::atom("flush")>;
/// A periodic check (idle partitions, progress).
using tick_atom = caf::atom_constant<caf::atom("tick")>;
/// A DAG timer may be due (live mode, wall clock).
using timer_atom = caf::atom_constant<caf::atom("timer")>;
/// The pipeline switched from replay to live.
using live_atom = caf::atom_constant<caf::atom("live")>;
/// Acknowledges a batch (flow control).
using ack_atom = caf::atom_constant<caf::atom("ack")>;
/// A retry (producer queue full).
using retry_atom = caf::atom_constant<caf::atom("retry")>;
/// Commits offsets (at-least-once progress).
using commit_atom = caf::atom_constant<caf::atom("commit")>;

// -- start-up -------------------------------------------------------------------

/// One partition of the pipeline, as resolved at start-up.
struct partition_entry {
  std::string topic;
  int32_t partition = 0;
  /// Index of the DAG source the topic feeds.
  uint32_t source = 0;
  int64_t start_offset = 0;
  /// End offset (exclusive) recorded at start-up.
  int64_t end_offset = 0;
  /// How the start offset was found.
  std::string how;
};

/// Every partition of the pipeline, numbered ("pid") in (topic, partition)
/// order.
struct partition_table {
  std::vector<partition_entry> partitions;
};

using partition_table_ptr = std::shared_ptr<const partition_table>;

// -- data -----------------------------------------------------------------------

/// What the consumer sends the orchestrator: messages in arrival order, then
/// the partitions that reached their end.
struct consumed_batch {
  std::vector<consumed_message> messages;
  std::vector<uint32_t> end_of_partition;
};

using consumed_batch_ptr = std::shared_ptr<consumed_batch>;

/// What the orchestrator releases to the executor: messages in (timestamp,
/// topic, partition, offset) order.
struct release_batch {
  std::vector<consumed_message> messages;
  /// The low watermark: the cycle time during replay.
  timestamp watermark{};
  /// True once every partition is caught up: the cycle time is the wall clock.
  bool live = false;
};

using release_batch_ptr = std::shared_ptr<release_batch>;

/// What the executor sends the producer: one release's records (results and
/// dead letters), and the positions the release reached: once every record
/// is delivered, these offsets may be committed.
struct record_batch {
  std::vector<producer_record> records;
  /// Next offset per partition (pid) after the release's messages.
  std::vector<partition_position> positions;
  uint64_t cycle_id = 0;
};

using record_batch_ptr = std::shared_ptr<record_batch>;

// -- counters -------------------------------------------------------------------

/// Counters of a running pipeline.
struct pipeline_stats {
  /// Messages read from Kafka.
  uint64_t consumed = 0;
  /// Messages released to the DAG.
  uint64_t released = 0;
  /// Messages held by the orchestrator (received, not yet released).
  uint64_t held = 0;
  /// The most messages held at once.
  uint64_t held_peak = 0;
  /// Partitions paused now.
  uint64_t paused_partitions = 0;
  /// Times a partition was paused.
  uint64_t pauses = 0;
  /// Times a partition was resumed.
  uint64_t resumes = 0;
  /// Messages that arrived behind the watermark.
  uint64_t late = 0;
  /// DAG cycles run.
  uint64_t cycles = 0;
  /// Records handed to the producer.
  uint64_t produced = 0;
  /// Records the brokers acknowledged.
  uint64_t delivered = 0;
  /// Records that failed after librdkafka's retries.
  uint64_t delivery_errors = 0;
  /// Messages sent to the dead-letter topic.
  uint64_t dead_lettered = 0;
  /// Cycles that failed (a node or a sink threw).
  uint64_t failed_cycles = 0;
  /// Offset commits the brokers accepted.
  uint64_t commits = 0;
  /// The low watermark (ms since the epoch; INT64_MIN before the first).
  int64_t watermark_ms = INT64_MIN;
  /// Whether every partition is caught up.
  bool live = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pipeline_stats& x) {
  return f(caf::meta::type_name("castor.pipeline_stats"), x.consumed, x.released, x.held,
           x.held_peak, x.paused_partitions, x.pauses, x.resumes, x.late, x.cycles,
           x.produced, x.delivered, x.delivery_errors, x.dead_lettered, x.failed_cycles,
           x.commits, x.watermark_ms, x.live);
}

/// Adds `from` to `into`, field by field (each actor fills its own fields).
void merge_into(pipeline_stats& into, const pipeline_stats& from);

} // namespace castor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(castor::partition_table_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(castor::consumed_batch_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(castor::release_batch_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(castor::record_batch_ptr)
