// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/actors.hpp"
#include "castor/defaults.hpp"
#include "castor/kafka/consumer_client.hpp"
#include "castor/start_policy.hpp"
#include "castor/wakeup.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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
  /// Topics the pipeline writes (sinks' default topics, the dead-letter
  /// topic), as (topic, what it is): checked to exist at start-up, like the
  /// sources, so a missing one is an error naming it instead of a topic a
  /// broker creates on the first record (or a record that fails later).
  std::vector<std::pair<std::string, std::string>> output_topics;
  size_t batch_size = defaults::batch_size;
  /// The orchestrator's credit is in units of its hold, one per this many
  /// bytes of key and value a message started (watermark_config::unit_bytes;
  /// 0: messages): a read asks librdkafka for as many messages as the units
  /// left at the partition's recent message sizes (read_in_units).
  size_t unit_bytes = 0;
  /// What librdkafka may prefetch is derived from this many bytes and the
  /// partition count (kafka::budget_properties; 0: castor's fixed defaults).
  size_t memory_budget = defaults::memory_budget;
  duration startup_timeout = defaults::startup_timeout;
  /// How often progress is committed (with a `group.id` only; zero: only
  /// at a clean stop).
  duration commit_interval = defaults::commit_interval;
  bool event_driven = true;
  /// Set (by the supervisor) when the pipeline stops: start-up gives up
  /// between broker queries instead of resolving every partition first.
  std::shared_ptr<std::atomic<bool>> cancel;
  /// How long the consumer's close may wait for librdkafka (leaving a group,
  /// requests in flight) before it destroys the client anyway.
  duration close_timeout = defaults::close_timeout;

  /// Group assignment (engine.assignment = group): subscribe with the
  /// properties' group.id and read what the group assigns; else every
  /// partition of every topic (manual assignment).
  bool group = false;
  /// How often a group's consumer queue is served when nothing else makes
  /// the consumer read (rebalances, max.poll.interval.ms).
  duration group_poll_interval = std::chrono::milliseconds{500};
  /// How long a consumer that may send reads nothing before it wakes
  /// librdkafka's fetcher (see consumer_state::watch_starvation).
  duration fetch_wake_after = std::chrono::milliseconds{20};
  /// Sooner, this long, while the broker holds `fetch_wake_far` messages or
  /// more of a partition read beyond what the consumer has read (a replay:
  /// reading nothing then means the fetcher stopped, not that nothing came
  /// or that a fetch is on its way). 0: never sooner.
  duration fetch_wake_early = std::chrono::milliseconds{5};
  int64_t fetch_wake_far = 1000;
  /// How long a revocation waits for what was released of its partitions
  /// to be delivered before it hands them over without committing it.
  caf::timespan revoke_timeout = std::chrono::seconds{30};

  /// Whether the consumer commits: the properties name a consumer group.
  bool commits() const { return properties.contains("group.id"); }

  caf::error validate() const;
};

struct consumer_state {
  static inline const char* name = "castor.consumer";

  using pointer = consumer_actor::stateful_pointer<consumer_state>;

  // Not an aggregate: CAF would try to build the state from the actor pointer.
  consumer_state() = default;

  ~consumer_state();

  /// Resolves start offsets, assigns, and enables wake-ups.
  caf::error start(pointer self);

  /// Reads what librdkafka holds (within the credit) and sends one batch to
  /// the orchestrator, if it has none in flight.
  void read_and_send(pointer self);

  /// The consumer may send and read nothing: in `fetch_wake_after` (in
  /// `fetch_wake_early` when the broker holds `fetch_wake_far` messages more
  /// of one of them), unless a message came meanwhile, it wakes librdkafka's
  /// fetcher for partitions it read that the broker holds more of (a fetcher
  /// that stopped at its prefetch limits would otherwise look again only
  /// after up to a second), and checks again.
  void watch_starvation(pointer self);
  void check_starved(pointer self, uint64_t reads_then);

  void apply(bool pause, const std::vector<uint32_t>& pids);

  /// Partition `pid` delivered offset `got` where `expected` was next: says
  /// and counts what an offset reset skipped (gaps below what the broker
  /// still holds are compaction or transaction markers, and normal).
  void note_gap(uint32_t pid, int64_t expected, int64_t got);

  /// A start (at start-up or at an assignment) was out of what the broker
  /// holds: says and counts what it skipped.
  void note_start_reset(uint32_t pid, const topic_partition& tp,
                        const partition_start& start);

  /// Called with a commit's outcome (no error: accepted) and whether it met
  /// a rebalance.
  using commit_done_fn = std::function<void(caf::error, bool)>;

  /// Commits the positions beyond what was committed (asynchronously);
  /// `done` (if any) is called with the result.
  void commit(const std::vector<int64_t>& positions, commit_done_fn done);

  // -- group assignment --
  /// Carries out the rebalances librdkafka reported.
  void serve_rebalances(pointer self);
  /// Resolves the new partitions' starts, tells the orchestrator, reads them.
  void on_assigned(pointer self, const std::vector<uint32_t>& pids);
  /// Stops reading `pids`; unless `lost`, drops what is held of them, waits
  /// for what was released to be delivered and commits it before handing
  /// them over (`finish_revocation`).
  void on_revoked(pointer self, const std::vector<uint32_t>& pids, bool lost);
  void finish_revocation(const std::vector<uint32_t>& pids, uint64_t dropped,
                         const std::string& outcome);
  /// A hand-over's commit (retried while the group syncs), then
  /// `finish_revocation`.
  struct handover {
    std::vector<uint32_t> pids;
    uint64_t dropped = 0;
    std::vector<int64_t> positions;
    int attempts = 0;
  };
  std::map<uint64_t, handover> handovers;
  uint64_t next_handover = 0;
  void commit_handover(pointer self, uint64_t id);

  /// Serves commit results.
  void serve_commits();

  /// A commit's result: updates `committed` and answers its promise.
  void on_commit(const kafka::commit_result& result);

  /// Sends the next deferred commit once no commit is in flight.
  void run_deferred();

  consumer_config config;
  orchestrator_actor orchestrator;
  /// Tells what is committable (none: no commits).
  producer_actor producer;
  std::unique_ptr<kafka::consumer_client> client;
  /// Whether each partition (pid) is paused: pausing is not reading its
  /// queue (librdkafka stops fetching when the queue holds
  /// queued.min.messages or queued.max.messages.kbytes), so resuming wastes
  /// nothing.
  std::vector<bool> paused;
  /// Whether each partition (pid) is read by this instance (with a group:
  /// assigned), and whether its revocation is under way (it may still be
  /// committed).
  std::vector<bool> owned;
  std::vector<bool> revoking;
  /// The timestamp of the last message read from each partition (pid) that
  /// had one; the beginning of time before any: reads go to the partitions
  /// furthest behind first (see read_and_send).
  std::vector<timestamp> read_latest;
  /// Per partition, the units of the hold a message read takes, estimated
  /// (how many messages a read asks for: read_in_units).
  std::vector<uint32_t> read_units;
  /// Whether each partition (pid) gave a message or met its end since it was
  /// assigned: until then, each read takes one of it beside the credit
  /// (read_round).
  std::vector<bool> heard;
  /// Where the partitions read start: equals (partitions without
  /// timestamps, say) take turns.
  uint32_t next_partition = 0;
  std::vector<uint32_t> readable_scratch;
  std::vector<std::pair<timestamp, uint32_t>> heap_scratch;
  std::shared_ptr<wakeup> wake = std::make_shared<wakeup>();
  partition_table_ptr table;
  bool in_flight = false;
  /// Transient broker errors met between batches (for the next one).
  uint32_t pending_broker_errors = 0;
  /// Messages the orchestrator accepts in the next batch.
  size_t allowance = 0;
  /// A clean stop began: read nothing more.
  bool stopped_reading = false;
  /// The next offset each partition should deliver (a jump is a gap: an
  /// offset reset, compaction or transaction markers).
  std::vector<int64_t> next_offset;
  /// Messages read in all (a starved consumer checks whether any came).
  uint64_t reads = 0;
  /// A check of a starved consumer is due (see `check_starved`), after this
  /// (doubling while wake-ups bring nothing).
  bool starved_check = false;
  duration wake_delay{}; // from fetch_wake_after, at start
  /// When the consumer last began to read nothing (watch_starvation).
  std::chrono::steady_clock::time_point starved_since{};
  /// The last check woke the fetcher, and nothing came since.
  bool woke = false;
  uint64_t wake_rounds = 0;
  /// Whether each partition (pid) reported its end since its last message.
  std::vector<bool> at_end;
  /// Offsets skipped per partition (pid) by resets, one entry per reset.
  std::vector<std::pair<uint32_t, int64_t>> skips;

  // -- commits --
  bool commits = false;
  /// The committed next offset by pid (the start offset until a commit).
  std::vector<int64_t> committed;
  /// Whether a commit is in flight (one at a time), and who waits for it.
  bool committing = false;
  /// A commit met REBALANCE_IN_PROGRESS: periodic commits wait for the
  /// round's assignment (at most `max_commit_hold`).
  bool commits_held = false;
  std::chrono::steady_clock::time_point held_since{};
  static constexpr std::chrono::seconds max_commit_hold{60};

  /// Whether a periodic commit waits now: the group rebalances (this
  /// member's JoinGroup waits, or a commit met REBALANCE_IN_PROGRESS and no
  /// assignment came since).
  bool periodic_commits_wait() {
    if (commits_held && std::chrono::steady_clock::now() - held_since > max_commit_hold)
      commits_held = false;
    return commits_held || (config.group && client && client->joining());
  }
  /// The group's first assignment came.
  bool assigned_once = false;
  commit_done_fn commit_done;
  /// Commits waiting for the one in flight (the final one, revocations').
  struct deferred_commit {
    std::vector<int64_t> positions;
    commit_done_fn done;
  };
  std::vector<deferred_commit> deferred;
  pipeline_stats stats;
};

/// The consumer: one librdkafka consumer for every partition of every source
/// topic (manual assignment); sends batches to `orchestrator`, one in flight.
/// With a consumer group, it commits what `producer` reports committable
/// every `commit_interval` and at a clean stop (a null `producer`: never).
consumer_actor::behavior_type consumer(consumer_state::pointer self,
                                       consumer_config config,
                                       orchestrator_actor orchestrator,
                                       producer_actor producer);

} // namespace castor
