// SPDX-License-Identifier: Apache-2.0
#pragma once

// The messages castor's actors exchange, with their inspect overloads.
// Batches travel as shared pointers to local-only structs: they own
// librdkafka messages and never leave the process.

#include "castor/commit_tracker.hpp"
#include "castor/kafka/consumed_message.hpp"
#include "castor/record.hpp"
#include "castor/time.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
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
/// Goes on with work left from the last turn (the executor's own message).
using run_atom = caf::atom_constant<caf::atom("run")>;
/// The end of a bounded replay (engine.stop): the orchestrator answers once
/// every partition reached the stop and everything before it was run.
using finish_atom = caf::atom_constant<caf::atom("finish")>;
/// A consumer group assigned partitions to this instance.
using assign_atom = caf::atom_constant<caf::atom("assign")>;
/// A consumer group takes partitions away from this instance.
using revoke_atom = caf::atom_constant<caf::atom("revoke")>;

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
  /// The broker leading the partition at start-up (-1: unknown).
  int32_t leader = -1;
};

/// Every partition of the pipeline, numbered ("pid") in (topic, partition)
/// order.
struct partition_table {
  std::vector<partition_entry> partitions;
};

using partition_table_ptr = std::shared_ptr<const partition_table>;

// -- consumer groups ------------------------------------------------------------

/// A partition the group assigned (engine.assignment = group), with where
/// its reading starts and the end offset when it was assigned.
struct partition_assignment {
  uint32_t pid = 0;
  int64_t start_offset = 0;
  int64_t end_offset = 0;
  /// How the start offset was found.
  std::string how;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, partition_assignment& x) {
  return f(caf::meta::type_name("castor.partition_assignment"), x.pid, x.start_offset,
           x.end_offset, x.how);
}

/// What a revocation found (the orchestrator's and the executor's answer):
/// the messages dropped (held, never run), and the next offset of each
/// revoked partition after what was run and handed to the producer (the
/// offsets to commit once delivered; none for a partition that ran nothing).
struct revocation {
  uint64_t dropped = 0;
  std::vector<std::pair<uint32_t, int64_t>> positions;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, revocation& x) {
  return f(caf::meta::type_name("castor.revocation"), x.dropped, x.positions);
}

// -- data -----------------------------------------------------------------------

/// What the consumer sends the orchestrator: messages in arrival order, then
/// the partitions that reached their end.
struct consumed_batch {
  std::vector<consumed_message> messages;
  std::vector<uint32_t> end_of_partition;
  /// Transient broker errors met (connections lost): the broker does not
  /// count as answering until the next message (see watermark_config).
  uint32_t broker_errors = 0;
};

using consumed_batch_ptr = std::shared_ptr<consumed_batch>;

/// What the orchestrator releases to the executor: messages in (timestamp,
/// topic, partition, offset) order.
struct release_batch {
  std::vector<consumed_message> messages;
  /// The low watermark (the cycle time of "batch" cycles during replay).
  timestamp watermark{};
  /// Every message with a timestamp at or before this has been released
  /// (this release included): cycles and timers up to it are complete. Live,
  /// the end of time once nothing is held.
  timestamp complete_until{};
  /// True once every partition is caught up: the cycle time is the wall clock.
  bool live = false;
  /// The last release of a bounded replay: nothing follows, so every
  /// timestamp and bucket is complete (timers still fire only up to
  /// `complete_until`, the stop).
  bool final = false;
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
  /// The release whose cycles made the records: their borrowed keys and
  /// values (`bytes::borrow`) are its messages' bytes, so whoever reads the
  /// records keeps the batch (and with it the release) meanwhile. Read only:
  /// the executor may still move the release's messages that no cycle has
  /// seen (none that a record points into).
  std::shared_ptr<const release_batch> input;
};

using record_batch_ptr = std::shared_ptr<record_batch>;

// -- counters -------------------------------------------------------------------

/// Counters of one topic: a source's (consumed, released) or a sink's
/// (produced, delivered, delivery errors; dead letters count on their topic).
struct topic_counters {
  std::string topic;
  uint64_t consumed = 0;
  uint64_t released = 0;
  uint64_t produced = 0;
  uint64_t delivered = 0;
  uint64_t delivery_errors = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, topic_counters& x) {
  return f(caf::meta::type_name("castor.topic_counters"), x.topic, x.consumed, x.released,
           x.produced, x.delivered, x.delivery_errors);
}

/// Where a source partition's replay stands.
struct partition_progress {
  std::string topic;
  int32_t partition = 0;
  /// First offset read.
  int64_t start_offset = 0;
  /// Next offset to read.
  int64_t position = 0;
  /// The end offset recorded at start-up (where replay ends).
  int64_t end_offset = 0;
  /// The broker's latest end offset (high watermark) as the consumer last
  /// saw it; -1 while unknown.
  int64_t high_watermark = -1;
  /// Messages held by the orchestrator.
  uint64_t held = 0;
  bool paused = false;
  bool caught_up = false;
  /// Offsets skipped by offset resets (retention removed them before castor
  /// read them, or auto.offset.reset = latest jumped past them).
  int64_t skipped = 0;
  /// Messages released to the DAG, the first and last of their timestamps
  /// (ms; INT64_MIN before the first) and the offset after the last (-1
  /// before the first).
  uint64_t released = 0;
  int64_t first_ms = INT64_MIN;
  int64_t last_ms = INT64_MIN;
  int64_t next_offset = -1;
  /// A bounded replay: messages read at or past the stop (not released),
  /// and whether the partition reached its stop.
  uint64_t beyond_stop = 0;
  bool finished = false;
  /// Read by this instance: always, unless a consumer group assigns the
  /// partitions (engine.assignment = group).
  bool assigned = true;

  /// Messages behind the latest end offset (0 while unknown).
  int64_t lag() const noexcept {
    auto end = std::max(high_watermark, end_offset);
    return end > position ? end - position : 0;
  }

  /// Offsets to replay, from the start to the end offset recorded at start-up.
  int64_t replay_total() const noexcept {
    return std::max<int64_t>(end_offset - start_offset, 0);
  }

  /// Offsets of the replay done (all once caught up).
  int64_t replay_done() const noexcept {
    if (caught_up)
      return replay_total();
    return std::clamp<int64_t>(position - start_offset, 0, replay_total());
  }

  /// Share of the replay done, 0..1 (1 once caught up).
  double progress() const noexcept {
    auto total = replay_total();
    return total > 0 ? static_cast<double>(replay_done()) / static_cast<double>(total)
                     : 1.0;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, partition_progress& x) {
  return f(caf::meta::type_name("castor.partition_progress"), x.topic, x.partition,
           x.start_offset, x.position, x.end_offset, x.high_watermark, x.held, x.paused,
           x.caught_up, x.skipped, x.released, x.first_ms, x.last_ms, x.next_offset,
           x.beyond_stop, x.finished, x.assigned);
}

/// Runs and time of one DAG node.
struct node_counters {
  std::string name;
  uint64_t runs = 0;
  /// Time in the node's function (ns).
  int64_t time_ns = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_counters& x) {
  return f(caf::meta::type_name("castor.node_counters"), x.name, x.runs, x.time_ns);
}

/// Upper bounds (seconds) of the cycle duration histogram's buckets (a last
/// bucket, +Inf, follows).
inline constexpr std::array<double, 10> cycle_duration_bounds{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0};

/// Counters of a running pipeline: totals, and per topic, partition and node.
struct pipeline_stats {
  /// Messages read from Kafka.
  uint64_t consumed = 0;
  /// Messages released to the DAG.
  uint64_t released = 0;
  /// Messages held by the orchestrator (received, not yet released).
  uint64_t held = 0;
  /// The most messages held at once.
  uint64_t held_peak = 0;
  /// Keys and values of the messages held (bytes), and the most at once.
  uint64_t held_bytes = 0;
  uint64_t held_bytes_peak = 0;
  /// Partitions paused now.
  uint64_t paused_partitions = 0;
  /// Times a partition was paused.
  uint64_t pauses = 0;
  /// Times a partition was resumed.
  uint64_t resumes = 0;
  /// Messages that arrived behind the watermark.
  uint64_t late = 0;
  /// Times a partition went idle (silent for idle_timeout while the broker
  /// answered) and stopped holding the watermark back.
  uint64_t idled = 0;
  /// Messages whose timestamp castor cannot take (ordered as untimed).
  uint64_t bad_timestamps = 0;
  /// Messages released whose cycle waits for the rest of its timestamp or
  /// bucket (held by the executor; not committed, so read again after a
  /// stop).
  uint64_t waiting = 0;
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
  /// Partitions whose position was out of range (at start-up or later) and
  /// was reset (auto.offset.reset), and the offsets that skipped.
  uint64_t offset_resets = 0;
  uint64_t skipped_offsets = 0;
  /// Gaps across which timers stopped catching up (engine.timer_catch_up).
  uint64_t timer_skips = 0;
  /// Records too large for the producer (dead-lettered or stopping).
  uint64_t oversized = 0;
  /// Rounds in which the consumer, having read nothing for a while, asked
  /// librdkafka's fetcher to look again while the broker held more than it
  /// had read (kafka::consumer_client::wake_fetcher).
  uint64_t fetcher_wakeups = 0;
  /// A consumer group (engine.assignment = group): the partitions assigned
  /// to this instance now, the rebalances that changed them (assignments
  /// and revocations), and the messages dropped at revocations (held or
  /// waiting for their cycle, never run or committed: the next owner reads
  /// them).
  uint64_t assigned_partitions = 0;
  uint64_t rebalances = 0;
  uint64_t revoked_dropped = 0;
  /// The low watermark (ms since the epoch; INT64_MIN before the first).
  int64_t watermark_ms = INT64_MIN;
  /// Whether every partition is caught up.
  bool live = false;
  /// A bounded replay: messages read at or past the stop (not released),
  /// and whether every partition reached the stop.
  uint64_t beyond_stop = 0;
  bool finished = false;
  /// How far castor is behind its input (seconds): in replay, the wall
  /// clock minus the watermark; when live, the age of the oldest message
  /// held (0 when nothing is held: a quiet input is not lag). NaN before
  /// the first watermark.
  double lag_seconds = std::numeric_limits<double>::quiet_NaN();
  /// Messages received per second since the start (replay speed).
  double rate = 0;
  /// Estimated seconds until caught up (-1: unknown; 0 when live).
  double eta_seconds = -1;
  /// Per source and sink topic, by name.
  std::vector<topic_counters> topics;
  /// Per source partition, in (topic, partition) order.
  std::vector<partition_progress> partitions;
  /// Per DAG node, in topological order.
  std::vector<node_counters> nodes;
  /// Cycles per duration bucket (`cycle_duration_bounds`, then +Inf); empty
  /// before the executor reports.
  std::vector<uint64_t> cycle_buckets;
  /// Total cycle time (seconds).
  double cycle_seconds = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pipeline_stats& x) {
  return f(caf::meta::type_name("castor.pipeline_stats"), x.consumed, x.released, x.held,
           x.held_peak, x.held_bytes, x.held_bytes_peak, x.paused_partitions, x.pauses,
           x.resumes, x.late, x.idled, x.bad_timestamps, x.waiting, x.cycles, x.produced,
           x.delivered, x.delivery_errors, x.dead_lettered, x.failed_cycles, x.commits,
           x.offset_resets, x.skipped_offsets, x.timer_skips, x.oversized,
           x.fetcher_wakeups, x.assigned_partitions, x.rebalances, x.revoked_dropped,
           x.watermark_ms, x.live, x.beyond_stop, x.finished, x.lag_seconds, x.rate,
           x.eta_seconds, x.topics, x.partitions, x.nodes, x.cycle_buckets,
           x.cycle_seconds);
}

/// The counters of `topic` in `stats` (added if missing).
topic_counters& topic_of(pipeline_stats& stats, std::string_view topic);

/// Adds `from` to `into`, field by field (each actor fills its own fields).
void merge_into(pipeline_stats& into, const pipeline_stats& from);

/// Registers castor's message types with a host application's config
/// (before its actor system starts), so that it can spawn castor's actors.
void add_message_types(caf::actor_system_config& cfg);

} // namespace castor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(castor::partition_table_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(castor::consumed_batch_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(castor::release_batch_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(castor::record_batch_ptr)
