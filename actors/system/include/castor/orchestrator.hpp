// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/actors.hpp"
#include "castor/stop_policy.hpp"
#include "castor/watermark_core.hpp"

#include <caf/actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <memory>
#include <optional>

namespace castor {

struct orchestrator_config {
  watermark_config watermark;
  /// Releases in flight to the executor.
  size_t releases_in_flight = defaults::releases_in_flight;
  /// How often idle partitions and the watermark are re-evaluated.
  duration tick_interval = defaults::tick_interval;
  /// How often a progress line is logged during replay (zero: never).
  duration progress_interval = defaults::progress_interval;
  /// Told `live_atom` once every partition is caught up and everything
  /// replayed has been released (optional).
  caf::actor listener;
  /// Where a bounded replay ends (never: replay, then live).
  stop_policy stop;
  /// Event time paced against wall time at this rate during replay (0: as
  /// fast as possible).
  double replay_speed = 0;

  caf::error validate() const;

  /// The tick period: `tick_interval`, shortened to `progress_interval` so
  /// progress lines come when asked for.
  duration tick_period() const;
};

struct orchestrator_state {
  static inline const char* name = "castor.orchestrator";

  // Not an aggregate: CAF would try to build the state from the actor pointer.
  orchestrator_state() = default;

  /// The core's clock: the actor clock (virtual in deterministic tests).
  timestamp now(orchestrator_actor::stateful_pointer<orchestrator_state> self) const;

  /// After the core changed: pauses and resumes to the consumer, the live
  /// switch, releases, and the consumer's credit.
  void after_change(orchestrator_actor::stateful_pointer<orchestrator_state> self);

  /// Logs replay progress: per topic % replayed, watermark, messages/s,
  /// estimated time to catch up.
  void log_progress(timestamp now);

  /// Sends releases while the executor has credit.
  void pump(orchestrator_actor::stateful_pointer<orchestrator_state> self);

  orchestrator_config config;
  executor_actor executor;
  consumer_actor consumer;
  partition_table_ptr table;
  /// The partitions, with the start and end offsets of their latest
  /// assignment (a consumer group's partitions come and go).
  partition_table parts;
  std::unique_ptr<watermark_core<consumed_message>> core;
  size_t in_flight = 0;
  std::optional<timestamp> last_sent_complete;
  std::optional<caf::typed_response_promise<uint32_t>> credit;
  std::optional<caf::typed_response_promise<ack_atom>> drained;
  bool draining = false;
  uint64_t held_peak = 0;
  uint64_t held_bytes_peak = 0;
  timestamp last_progress{};
  uint64_t received_at_last_progress = 0;
  std::vector<timestamp> times;
  /// Partitions already warned about a timestamp out of range.
  std::vector<bool> warned_bad_time;
  uint64_t bad_timestamps = 0;
  /// The watermark and since when it has not moved (for the stall warning).
  std::optional<timestamp> watched_watermark;
  timestamp watermark_since{};
  bool warned_stall = false;

  /// A message of `pid` carries a timestamp castor cannot take: warn once.
  void note_bad_time(uint32_t pid, int64_t offset);

  /// Warns once when the watermark has not moved for idle_timeout during
  /// replay, naming the partitions it waits for.
  void check_stall(timestamp now);
  /// When the replay started (for its rate).
  timestamp started{};

  // -- bounded replays ---------------------------------------------------------
  /// engine.stop = a time, resolved at start.
  std::optional<timestamp> stop_time;
  /// Messages read at or past the stop, per partition.
  std::vector<uint64_t> beyond_stop;
  /// The latest timestamp released (a stop at the end fires timers up to it).
  std::optional<timestamp> last_released;
  bool final_sent = false;
  bool finished = false;
  std::optional<caf::typed_response_promise<ack_atom>> finish_promise;
  /// Finishes the partitions that reached the stop; switches to live when a
  /// stop time is still ahead and every partition is caught up.
  void check_stop(orchestrator_actor::stateful_pointer<orchestrator_state> self);
  /// Whether `m` of `pid` is at or past the stop (and finishes `pid`).
  bool past_stop(uint32_t pid, const consumed_message& m);
  /// The latest time cycles and timers may reach now: the stop's, and the
  /// pacing's.
  timestamp limit(timestamp complete) const;

  // -- pacing --------------------------------------------------------------------
  std::optional<timestamp> pace_event0;
  timestamp pace_wall0{};
  bool pace_wake_pending = false;
  /// The event time the pacing allows now (max when not pacing).
  timestamp paced_until() const;
  /// Whether what is released is still replay (what was held at the switch
  /// to live included).
  bool replaying() const;
  /// Wakes the orchestrator when `ahead` more event time is due (max:
  /// unknown), at least every 50 ms; once at a time.
  void wake_paced(orchestrator_actor::stateful_pointer<orchestrator_state> self,
                  duration ahead);
  /// Sends a release to the executor; its answer frees the slot, counts its
  /// messages as run, and (the final one) ends a bounded replay.
  void send_release(orchestrator_actor::stateful_pointer<orchestrator_state> self,
                    std::shared_ptr<release_batch> batch);

  // -- what was released, per partition (for run reports) ------------------------
  struct partition_release {
    uint64_t count = 0;
    int64_t first_ms = INT64_MIN;
    int64_t last_ms = INT64_MIN;
    /// The offset after the last released (-1: none).
    int64_t next_offset = -1;
  };
  std::vector<partition_release> released;

  /// live_atom (and pacing) wait until everything received before the
  /// switch to live has been released and run: its count, and the count of
  /// messages whose releases the executor acknowledged.
  bool live_pending = false;
  uint64_t received_at_live = 0;
  uint64_t acked = 0;
  /// The last time cycles and timers of a bounded replay reach: just
  /// before the stop time, or the last message's time at the end offsets.
  timestamp final_limit() const;

  /// Where each partition's replay stands, in pid order.
  std::vector<partition_progress> progress() const;

  /// Counters, with per-topic and per-partition figures.
  pipeline_stats
  stats(orchestrator_actor::stateful_pointer<orchestrator_state> self) const;
};

/// The watermark orchestrator: holds what is ahead of the low watermark,
/// releases in timestamp order to `executor`, decides pauses.
orchestrator_actor::behavior_type
orchestrator(orchestrator_actor::stateful_pointer<orchestrator_state> self,
             orchestrator_config config, executor_actor executor);

} // namespace castor
