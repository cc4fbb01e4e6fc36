// SPDX-License-Identifier: Apache-2.0
#include "castor/protocol.hpp"

#include <caf/actor_system_config.hpp>

#include <algorithm>
#include <cmath>

namespace castor {

void merge_into(pipeline_stats& into, const pipeline_stats& from) {
  into.consumed += from.consumed;
  into.released += from.released;
  into.held += from.held;
  into.held_peak = std::max(into.held_peak, from.held_peak);
  into.held_bytes += from.held_bytes;
  into.held_bytes_peak = std::max(into.held_bytes_peak, from.held_bytes_peak);
  into.paused_partitions += from.paused_partitions;
  into.pauses += from.pauses;
  into.resumes += from.resumes;
  into.late += from.late;
  into.idled += from.idled;
  into.bad_timestamps += from.bad_timestamps;
  into.waiting += from.waiting;
  into.cycles += from.cycles;
  into.produced += from.produced;
  into.delivered += from.delivered;
  into.delivery_errors += from.delivery_errors;
  into.dead_lettered += from.dead_lettered;
  into.failed_cycles += from.failed_cycles;
  into.commits += from.commits;
  into.timer_skips += from.timer_skips;
  into.offset_resets += from.offset_resets;
  into.skipped_offsets += from.skipped_offsets;
  into.oversized += from.oversized;
  into.fetcher_wakeups += from.fetcher_wakeups;
  into.assigned_partitions += from.assigned_partitions;
  into.rebalances += from.rebalances;
  into.revoked_dropped += from.revoked_dropped;
  into.watermark_ms = std::max(into.watermark_ms, from.watermark_ms);
  into.live = into.live || from.live;
  into.beyond_stop += from.beyond_stop;
  into.finished = into.finished || from.finished;
  if (!std::isnan(from.lag_seconds))
    into.lag_seconds = from.lag_seconds;
  into.rate = std::max(into.rate, from.rate);
  into.eta_seconds = std::max(into.eta_seconds, from.eta_seconds);
  for (auto& t : from.topics) {
    auto& mine = topic_of(into, t.topic);
    mine.consumed += t.consumed;
    mine.released += t.released;
    mine.produced += t.produced;
    mine.delivered += t.delivered;
    mine.delivery_errors += t.delivery_errors;
  }
  // The orchestrator knows positions, the consumer the high watermarks.
  for (auto& p : from.partitions) {
    auto i = std::find_if(into.partitions.begin(), into.partitions.end(), [&](auto& q) {
      return q.topic == p.topic && q.partition == p.partition;
    });
    if (i == into.partitions.end()) {
      into.partitions.push_back(p);
      continue;
    }
    i->start_offset = std::max(i->start_offset, p.start_offset);
    i->position = std::max(i->position, p.position);
    i->end_offset = std::max(i->end_offset, p.end_offset);
    i->high_watermark = std::max(i->high_watermark, p.high_watermark);
    i->held += p.held;
    i->skipped += p.skipped;
    i->paused = i->paused || p.paused;
    i->caught_up = i->caught_up || p.caught_up;
    i->released += p.released;
    i->first_ms = std::max(i->first_ms, p.first_ms);
    i->last_ms = std::max(i->last_ms, p.last_ms);
    i->next_offset = std::max(i->next_offset, p.next_offset);
    i->beyond_stop += p.beyond_stop;
    i->finished = i->finished || p.finished;
    // Each actor knows whether it reads the partition: all must.
    i->assigned = i->assigned && p.assigned;
  }
  into.nodes.insert(into.nodes.end(), from.nodes.begin(), from.nodes.end());
  if (into.cycle_buckets.empty())
    into.cycle_buckets = from.cycle_buckets;
  into.cycle_seconds += from.cycle_seconds;
}

topic_counters& topic_of(pipeline_stats& stats, std::string_view topic) {
  auto i = std::find_if(stats.topics.begin(), stats.topics.end(),
                        [&](auto& t) { return t.topic == topic; });
  if (i != stats.topics.end())
    return *i;
  stats.topics.push_back(topic_counters{std::string{topic}});
  return stats.topics.back();
}

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<pipeline_stats>("castor.pipeline_stats");
  cfg.add_message_type<partition_assignment>("castor.partition_assignment");
  cfg.add_message_type<std::vector<partition_assignment>>(
      "std::vector<castor.partition_assignment>");
  cfg.add_message_type<revocation>("castor.revocation");
}

} // namespace castor
