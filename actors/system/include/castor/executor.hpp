// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/actors.hpp"
#include "castor/cycles.hpp"
#include "castor/defaults.hpp"
#include "castor/pipeline.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <deque>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace castor {

/// The executor's settings (resolved from pipeline_config).
struct executor_config {
  /// Where dead letters go (needed by a dead_letter policy).
  std::string dead_letter_topic;
  error_policy on_deserialize_error = error_policy::stop;
  error_policy on_node_error = error_policy::stop;
  /// The largest record the producer takes (its `message.max.bytes`, as
  /// librdkafka counts it): a larger record follows `on_node_error` instead
  /// of failing in the producer, and dead letters are cut to fit.
  size_t max_message_bytes = defaults::message_max_bytes;
  /// A release's records go to the producer in batches of about this many
  /// (between cycles), with at most `batches_in_flight` unanswered: a
  /// release that makes many records never holds them all in memory.
  size_t records_per_batch = defaults::records_per_batch;
  size_t batches_in_flight = defaults::record_batches_in_flight;
  /// Cycles run in one turn before the executor lets other messages (stats)
  /// in and goes on.
  size_t cycles_per_turn = defaults::cycles_per_turn;
  /// Timer cycles without input run in a row across a gap before the missed
  /// periods are skipped: the DAG's time then jumps to the next input (or the
  /// release's time), where the due timers fire once (0: never skip).
  uint64_t timer_catch_up = defaults::timer_catch_up;
  /// How cycles are formed (engine.cycles).
  cycle_policy cycles;
  /// Most messages in one cycle (cycles by timestamp split there), in units
  /// of the hold with `unit_bytes` (watermark_config::unit_bytes: a
  /// timestamp's messages wait for the rest of it within the hold's bytes).
  size_t batch_size = defaults::batch_size;
  size_t unit_bytes = 0;
  /// A bounded replay's stop time: no timer due at or after it fires (live
  /// included).
  std::optional<timestamp> stop;

  caf::error validate() const;
};

struct executor_state {
  static inline const char* name = "castor.executor";

  // Not an aggregate: CAF would try to build the state from the actor pointer.
  executor_state() = default;

  /// A release on its way through the DAG: its cycles run a turn at a time,
  /// its records go out in batches, and it is answered once the producer has
  /// taken the last of them.
  struct job {
    uint64_t id = 0;
    release_batch_ptr batch;
    /// Who waits for the release (none for the records of a live timer).
    std::optional<caf::typed_response_promise<ack_atom>> promise;
    /// The cycle time of the release's last cycle.
    timestamp until{};
    /// The first message not yet in a completed cycle.
    size_t next = 0;
    /// The first message whose position was not yet sent to the producer.
    size_t reported = 0;
    bool started = false;
    /// A timer set again for a time already reached fires in a later release.
    bool timers_done = false;
    /// Every cycle ran.
    bool done = false;
    /// Record batches sent and not yet answered.
    size_t outstanding = 0;
    /// Messages at the front known to be of the first group (carried).
    size_t scanned = 0;
  };

  using pointer = executor_actor::stateful_pointer<executor_state>;

  /// Runs queued releases' cycles while the producer has room; sends their
  /// records; answers the releases it finished.
  void work(pointer self);

  /// Runs up to `budget` cycles of `j` (fewer when its records fill a
  /// batch): in replay, a cycle at each DAG timer that falls inside the
  /// release (with the messages up to that time) and one at the watermark;
  /// when live, the last one at the wall clock.
  caf::error step(job& j, size_t& budget);

  /// `step` for cycles by event time (timestamps or buckets): a group whose
  /// input is not complete yet waits in `carry` for the next release.
  caf::error step_by_time(job& j, size_t& budget);

  /// `step` for cycles by release ("batch"): the release's messages in one
  /// cycle at the watermark (the wall clock when live), timers between.
  caf::error step_by_release(job& j, size_t& budget);

  /// Timers caught up timer_catch_up times without input: skip to the next
  /// input.
  void skip_timers(timestamp due, std::optional<timestamp> next_input);

  /// Feeds `messages` to their sources, executes the DAG at `t` and
  /// serializes the updated sinks into `out`; dead letters follow the
  /// cycle's records, in release order.
  caf::error run_cycle(std::span<const consumed_message> messages, timestamp t);

  /// Sets source `s` from its messages of this cycle; a rejected message is
  /// dead-lettered (and the rest fed again) or stops the pipeline.
  caf::error feed_source(uint32_t s);

  /// Dead-letters every input message of the failed cycle.
  void dead_letter_cycle(const std::string& stage, const std::string& error);

  /// The dead letter of input message `m` (index `index` in the cycle).
  void dead_letter(size_t index, const message_view& m, const std::string& stage,
                   const std::string& error);

  /// The records of this cycle's sinks that are too large for the producer:
  /// dead-lettered (cut to fit) or an error, per `on_node_error`.
  caf::error check_sizes(size_t first, const std::string& sink);

  /// Sends the records made so far and the positions `j` reached.
  void send(pointer self, job& j);

  /// The next offset of every partition in `messages`.
  std::vector<partition_position>
  positions_of(std::span<const consumed_message> messages);

  /// Live: wakes the executor when the DAG's next timer is due.
  void arm_timer(pointer self);

  /// Drops the carried messages of partitions revoked after release
  /// `job_id` was sent (counted in revoked_dropped).
  void drop_revoked(uint64_t job_id);

  /// Answers the revocations whose earlier releases are all done.
  void answer_revocations();

  /// Stops the executor with `err` (and answers what waits with it).
  void fail(pointer self, const caf::error& err);

  executor_config config;
  pipeline_definition_ptr definition;
  producer_actor producer;
  partition_table_ptr table;
  std::vector<std::vector<message_view>> per_source;
  /// Each view's index among the cycle's messages (parallel to per_source).
  std::vector<std::vector<size_t>> per_source_index;
  std::vector<uint32_t> touched;
  std::unordered_map<const detail::node_base*, size_t> sink_index;
  /// Releases not yet answered, in order.
  std::deque<job> jobs;
  uint64_t next_job_id = 0;
  /// Records made and not yet sent.
  std::vector<producer_record> out;
  /// Records in the last batch sent: the room `out` takes when it gets
  /// its first record (growth by doubling would move every record again).
  size_t last_batch_records = 0;
  /// This cycle's dead letters with the index of their message (records of
  /// the DAG's output come after the inputs).
  std::vector<std::pair<size_t, producer_record>> dead;
  size_t batches_in_flight = 0;
  /// A `run_atom` to continue is on its way.
  bool resuming = false;
  std::optional<caf::typed_response_promise<ack_atom>> drained;
  bool live = false;
  std::optional<timestamp> armed;
  /// complete_until of the last release (live timers wait until it is the
  /// end of time: nothing of the replay is still to come).
  timestamp last_complete = timestamp::min();
  /// Timer cycles without input in a row (across releases).
  uint64_t timer_streak = 0;
  /// Timers stopped catching up: they fire again with the next input.
  bool skipping = false;
  /// Messages of a group (a timestamp or a bucket) not complete at the last
  /// release: they run with the next one.
  std::vector<consumed_message> carry;
  /// How many carried messages are known to be of their group (not scanned
  /// again when the group goes on).
  size_t carry_scanned = 0;
  /// Scratch for positions_of: next offset by pid (-1: not in the release).
  std::vector<int64_t> next_offsets;
  /// The next offset per partition (pid) after what was sent to the
  /// producer (-1: nothing yet).
  std::vector<int64_t> sent_positions;
  /// Per partition (pid): the id of the first release after its latest
  /// revocation (0: never revoked); carried messages of earlier releases
  /// are dropped.
  std::vector<uint64_t> revoked_before;
  /// The largest of revoked_before (0: no revocation yet).
  uint64_t latest_revocation = 0;
  /// A revocation waits for the releases before it (ids below `upto`).
  struct pending_revocation {
    uint64_t upto = 0;
    std::vector<uint32_t> pids;
    uint64_t dropped_before = 0;
    caf::typed_response_promise<revocation> promise;
  };
  std::deque<pending_revocation> revocations;
  pipeline_stats stats;
};

/// The DAG executor: runs `definition`'s DAG on released messages and hands
/// the updated sinks' records to `producer`.
executor_actor::behavior_type executor(executor_state::pointer self,
                                       pipeline_definition_ptr definition,
                                       producer_actor producer, executor_config config);

} // namespace castor
