// SPDX-License-Identifier: Apache-2.0
#pragma once

// The logic of the watermark orchestrator, free of CAF and librdkafka: per-partition
// FIFOs in offset order, a monotonic low watermark, merged release in (timestamp, topic,
// partition, offset) order, pausing of partitions that run ahead, and the switch to live.

#include "castor/defaults.hpp"
#include "castor/time.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <queue>
#include <utility>
#include <vector>

namespace castor {

/// Settings of the watermark orchestrator.
struct watermark_config {
  /// Most messages released per cycle (units of the hold with
  /// `unit_bytes`); the hold cap is `batch_size * 5`.
  size_t batch_size = defaults::batch_size;
  /// A partition that is not caught up and delivered nothing for this long,
  /// counted only while the broker answers (see `answer_window`) and the
  /// partition is read (not paused), no longer holds the watermark back
  /// (until it delivers again).
  duration idle_timeout = defaults::idle_timeout;
  /// Silence counts only between two answers of the broker (a message or an
  /// end of partition, from any partition) at most this far apart. A broker
  /// that is down or frozen answers nothing: that time is not idleness, and
  /// replay order holds.
  duration answer_window = defaults::answer_window;
  /// A bounded replay (a backtest): the core does not switch to live by
  /// itself when every partition is caught up; the orchestrator finishes
  /// partitions (`finish`) and switches (`go_live`) as its stop says.
  bool bounded = false;
  /// Partitions come and go with a consumer group's assignment: none is
  /// owned until `assign`, and the core does not go live before the first
  /// assignment (`assignment_received`).
  bool group = false;
  /// The hold cap when not 0 (else `batch_size * 5`): for experiments and
  /// benchmarks that compare a replay with and without the cap.
  size_t hold_limit = 0;

  /// The hold's bytes: when not 0, a message counts one unit of the hold
  /// per `unit_bytes` of key and value it started (at least one), so that
  /// the cap, the batches and every limit below, counted in units, bound the
  /// bytes held as well as the messages (`hold_unit_bytes` derives it from
  /// engine.memory_budget). 0: every message counts one.
  size_t unit_bytes = 0;

  size_t hold_cap() const noexcept {
    return hold_limit > 0 ? hold_limit : batch_size * 5;
  }

  /// The most units the hold, the releases in flight and the executor take
  /// together: the hold's bound (cap + 3 x batch_size, docs/pipeline.md),
  /// `releases_in_flight` batches, and a batch of a timestamp waiting in
  /// the executor for the rest of it (cycles by timestamp).
  size_t units_bound(size_t releases_in_flight) const noexcept {
    return hold_cap() + (4 + releases_in_flight) * batch_size;
  }
};

/// The units of the hold a message of `bytes` (key and value) takes: one
/// per `unit_bytes` started, at least one; one when `unit_bytes` is 0.
inline size_t hold_units(size_t bytes, size_t unit_bytes) noexcept {
  if (unit_bytes == 0 || bytes <= unit_bytes)
    return 1;
  return (bytes + unit_bytes - 1) / unit_bytes;
}

/// The `unit_bytes` that keeps what the orchestrator holds and has in
/// flight, and what the executor keeps waiting
/// (`config.units_bound(releases_in_flight)` units), within a quarter of a
/// memory budget of `budget` bytes (the rest: half for librdkafka's
/// prefetch, an eighth for one fetch response, an eighth for the producer's
/// queue: kafka::budget_properties; the DAG's own state is not in it); 0
/// (messages only) for a budget of 0.
inline size_t hold_unit_bytes(size_t budget, const watermark_config& config,
                              size_t releases_in_flight) noexcept {
  if (budget == 0)
    return 0;
  return std::max<size_t>(
      budget / 4 / std::max<size_t>(config.units_bound(releases_in_flight), 1), 1);
}

/// What the orchestrator knows of a partition at start-up. Partitions are
/// numbered (their "pid") in (topic, partition) order, so comparing pids
/// compares (topic, partition).
struct partition_bounds {
  /// First offset to read.
  int64_t start_offset = 0;
  /// End offset (exclusive) recorded at start-up.
  int64_t end_offset = 0;
  /// The broker that leads the partition (-1: unknown): silence counts only
  /// while this broker answers for other partitions.
  int32_t broker = -1;
};

/// Counters kept by the orchestrator core.
struct watermark_counters {
  uint64_t received = 0;
  uint64_t released = 0;
  uint64_t held = 0;
  /// Keys and values of the messages held.
  uint64_t held_bytes = 0;
  uint64_t paused_partitions = 0;
  /// Messages that arrived with a timestamp already behind the watermark
  /// (possible only after an idle timeout or with timestamps going backwards).
  uint64_t late = 0;
  /// Times a partition went idle and stopped holding the watermark back.
  uint64_t idled = 0;
  uint64_t pauses = 0;
  uint64_t resumes = 0;
  /// Messages held for partitions the group revoked: dropped, never
  /// released (not committed, so the partition's next owner reads them).
  uint64_t revoked_dropped = 0;
};

/// The orchestrator core. `Msg` is whatever the caller holds per message
/// (move-only is fine).
template <class Msg>
class watermark_core {
public:
  watermark_core(std::vector<partition_bounds> partitions, watermark_config config,
                 timestamp now)
      : config_(config), parts_(partitions.size()) {
    for (size_t i = 0; i < partitions.size(); ++i) {
      auto& p = parts_[i];
      p.end_offset = partitions[i].end_offset;
      p.position = partitions[i].start_offset;
      // Brokers as dense slots (few), so that an answer costs no lookup.
      auto b = std::find(brokers_.begin(), brokers_.end(), partitions[i].broker);
      p.broker = static_cast<uint32_t>(b - brokers_.begin());
      if (b == brokers_.end())
        brokers_.push_back(partitions[i].broker);
      // Nothing to replay: caught up at once.
      p.caught_up = p.position >= p.end_offset;
      p.owned = !config_.group;
    }
    awaiting_assignment_ = config_.group;
    update(now);
  }

  // -- receiving --------------------------------------------------------------

  /// Takes in a message of partition `pid`. `ts` is empty for messages
  /// without a timestamp: they take the latest timestamp seen on their
  /// partition (or the beginning of time), so they neither move nor hold the
  /// watermark back.
  /// `bytes`: the message's key and value (what it counts against the hold,
  /// `watermark_config::unit_bytes`; at most 4 GiB counts).
  void push(uint32_t pid, int64_t offset, std::optional<timestamp> ts, Msg msg,
            timestamp now, size_t bytes = 0) {
    auto& p = parts_[pid];
    timestamp effective;
    if (ts) {
      effective = *ts;
      if (!p.latest || *p.latest < *ts)
        p.latest = *ts;
    } else {
      effective = p.latest ? *p.latest : timestamp::min();
      p.untimed = true;
    }
    if (ts && effective < watermark_ && !live_)
      ++counters_.late;
    auto size = static_cast<uint32_t>(std::min<size_t>(bytes, UINT32_MAX));
    auto units = static_cast<uint32_t>(hold_units(size, config_.unit_bytes));
    p.fifo.push_back(entry{effective, offset, std::move(msg), size, units});
    p.units += units;
    load_ += units;
    counters_.held_bytes += size;
    p.position = offset + 1;
    heard_from(pid, now);
    if (p.position >= p.end_offset)
      p.caught_up = true;
    ++p.received;
    ++counters_.received;
    ++counters_.held;
    dirty_ = true;
  }

  /// The broker said partition `pid` has no more messages for now.
  void end_of_partition(uint32_t pid, timestamp now) {
    auto& p = parts_[pid];
    p.caught_up = true;
    heard_from(pid, now);
    dirty_ = true;
  }

  /// The consumer met a broker error (a connection lost): until the next
  /// message or end of partition, the broker does not count as answering.
  void broker_trouble() noexcept {
    for (auto& a : last_answer_)
      a.reset();
  }

  /// Re-evaluates idle partitions, the watermark and pauses at `now`.
  /// Called after pushes and on a timer.
  void update(timestamp now) {
    dirty_ = false;
    if (!live_ && !config_.bounded && all_caught_up()) {
      live_ = true;
      went_live_ = true;
    }
    if (!live_)
      advance_watermark(now);
    else
      silent_ = false;
    decide_pauses();
  }

  // -- group assignment --------------------------------------------------------

  /// The group assigned partition `pid`, to be read from `start_offset`
  /// (its replay ends at `end_offset`, the end when assigned). Until it
  /// delivers, it holds the watermark back like a partition at start-up;
  /// its messages behind the watermark are counted late and released in
  /// order with the rest (never dropped). A partition with messages to
  /// replay takes a live core back to replay (in order, until every owned
  /// partition is caught up again).
  void assign(uint32_t pid, int64_t start_offset, int64_t end_offset) {
    revoke(pid); // (owned already: what it held goes)
    auto& p = parts_[pid];
    part fresh;
    fresh.position = start_offset;
    fresh.end_offset = end_offset;
    fresh.received = p.received;
    fresh.dropped = p.dropped;
    fresh.broker = p.broker;
    fresh.reported_idle = p.reported_idle;
    fresh.caught_up = start_offset >= end_offset;
    p = std::move(fresh);
    if (live_ && !p.caught_up)
      live_ = false;
    dirty_ = true;
  }

  /// The group took partition `pid` away: what it holds is dropped (and
  /// returned as a count), it is no longer paused, and it holds nothing
  /// back until assigned again.
  uint64_t revoke(uint32_t pid) {
    auto& p = parts_[pid];
    if (!p.owned)
      return 0;
    uint64_t dropped = p.fifo.size();
    for (auto& e : p.fifo)
      counters_.held_bytes -= e.bytes;
    load_ -= p.units;
    p.units = 0;
    p.fifo.clear();
    p.owned = false;
    // A revocation ends with the round's assignment: until then (and with
    // nothing owned) the core does not go live.
    awaiting_assignment_ = true;
    p.dropped += dropped;
    counters_.held -= dropped;
    counters_.revoked_dropped += dropped;
    if (p.paused) {
      p.paused = false;
      --counters_.paused_partitions;
    }
    dirty_ = true;
    return dropped;
  }

  /// A rebalance gave this instance its partitions (possibly none): from
  /// now on the core may go live once every owned partition is caught up.
  void assignment_received() noexcept {
    awaiting_assignment_ = false;
    dirty_ = true;
  }

  bool owned(uint32_t pid) const { return parts_[pid].owned; }
  size_t owned_partitions() const {
    return static_cast<size_t>(std::count_if(parts_.begin(), parts_.end(),
                                             [](const part& p) { return p.owned; }));
  }

  // -- bounded replays ---------------------------------------------------------

  /// Partition `pid` delivers nothing more (its replay reached the stop): it
  /// no longer holds anything back, is never paused or resumed again, and
  /// `take_finished` tells the orchestrator to stop reading it.
  void finish(uint32_t pid) {
    auto& p = parts_[pid];
    if (p.finished)
      return;
    p.finished = true;
    p.caught_up = true;
    if (p.paused) {
      p.paused = false;
      --counters_.paused_partitions;
    }
    finished_.push_back(pid);
    ++finished_count_;
    dirty_ = true;
  }

  bool finished(uint32_t pid) const { return parts_[pid].finished; }
  bool all_finished() const noexcept { return finished_count_ == parts_.size(); }
  /// Every owned partition is caught up (with a group: an assignment came
  /// and gave at least one; an instance that reads nothing is not live).
  bool all_caught_up() const {
    if (config_.group && (awaiting_assignment_ || owned_partitions() == 0))
      return false;
    return std::all_of(parts_.begin(), parts_.end(),
                       [](const part& p) { return p.caught_up || !p.owned; });
  }

  /// Partitions finished since the last call.
  std::vector<uint32_t> take_finished() { return std::exchange(finished_, {}); }

  /// Switches to live (a bounded replay whose stop is still ahead once
  /// every partition is caught up).
  void go_live() {
    if (live_)
      return;
    live_ = true;
    went_live_ = true;
    decide_pauses();
  }

  /// The earliest timestamp held, if any.
  std::optional<timestamp> head_time() const { return oldest_held(); }

  // -- releasing --------------------------------------------------------------

  /// Whether `release` would give at least one message.
  bool releasable() const {
    auto f = frontier();
    for (uint32_t pid = 0; pid < parts_.size(); ++pid) {
      auto& p = parts_[pid];
      if (!p.fifo.empty() && !waits(pid, f))
        return true;
    }
    return false;
  }

  /// Appends up to `batch_size` messages (with `unit_bytes`, messages that
  /// take up to `batch_size` units; a larger one goes alone), merged in
  /// (timestamp, partition, offset) order, and returns how many. In replay a
  /// message goes only when no partition still replaying can deliver one
  /// that sorts before it: a partition that holds nothing can still deliver
  /// messages at its latest timestamp (its next ones are not earlier), so
  /// every message must sort before (latest, partition) of each such
  /// partition. The order released is therefore one and the same whatever
  /// the chunks and interleavings the consumer delivers in and whatever the
  /// batch size (for partitions whose timestamps do not go backwards; idle
  /// partitions are the exception).
  /// When live, every held message goes, in the same merged order. With
  /// `times`, appends the time each message was ordered by.
  size_t release(std::vector<Msg>& out, std::vector<timestamp>* times = nullptr,
                 timestamp not_after = timestamp::max()) {
    std::priority_queue<key, std::vector<key>, std::greater<>> heads;
    for (uint32_t pid = 0; pid < parts_.size(); ++pid)
      if (!parts_[pid].fifo.empty())
        heads.push(key{parts_[pid].fifo.front().ts, pid});
    auto f = frontier();
    size_t count = 0;
    size_t units = 0;
    while (!heads.empty()) {
      auto top = heads.top();
      if ((!live_ && !(top < f)) || not_after < top.ts)
        break;
      auto pid = top.pid;
      auto& p = parts_[pid];
      if (count > 0 && units + p.fifo.front().units > config_.batch_size)
        break;
      heads.pop();
      out.push_back(std::move(p.fifo.front().msg));
      if (times != nullptr)
        times->push_back(p.fifo.front().ts);
      units += p.fifo.front().units;
      p.units -= p.fifo.front().units;
      counters_.held_bytes -= p.fifo.front().bytes;
      p.fifo.pop_front();
      ++count;
      if (!p.fifo.empty())
        heads.push(key{p.fifo.front().ts, pid});
      else if (auto bound = bound_of(pid))
        f = std::min(f, *bound);
    }
    counters_.released += count;
    counters_.held -= count;
    load_ -= units;
    if (count > 0)
      decide_pauses();
    return count;
  }

  /// Every message with a timestamp at or before this was released: no
  /// partition still replaying can deliver one, and none is held. The last
  /// time at which a replay may run cycles and fire timers; live, the end of
  /// time once nothing is held (what was held at the switch leaves in
  /// several releases, and a timestamp that goes on in the next one is not
  /// complete yet).
  timestamp complete_until() const {
    auto limit = timestamp::max();
    for (uint32_t pid = 0; pid < parts_.size(); ++pid) {
      auto& p = parts_[pid];
      if (!p.fifo.empty())
        limit = std::min(limit, p.fifo.front().ts);
      else if (auto bound = bound_of(pid))
        limit = std::min(limit, bound->ts);
    }
    // In replay, never beyond the watermark (every partition still
    // replaying idle and nothing held bounds nothing, but timers must not
    // run to the end of time).
    if (limit == timestamp::max())
      return live_ ? limit : watermark_;
    // Strictly before: more messages may come at that very time.
    return limit == timestamp::min() ? limit : limit - duration{1};
  }

  // -- pausing ----------------------------------------------------------------

  /// Partitions to pause since the last call.
  std::vector<uint32_t> take_pauses() { return std::exchange(to_pause_, {}); }

  /// Partitions to resume since the last call.
  std::vector<uint32_t> take_resumes() { return std::exchange(to_resume_, {}); }

  /// Whether the consumer may send more: below the hold cap, or (in replay)
  /// at the cap with nothing releasable, so the partitions holding the
  /// watermark back can still deliver.
  bool wants_more() const {
    if (load_ < config_.hold_cap())
      return true;
    return !live_ && !releasable();
  }

  /// How many messages the consumer may send next, in units of the hold
  /// (`unit_bytes`; messages when 0) (0 while `!wants_more()`):
  /// at most a batch, and no more than keeps the held messages within the
  /// cap plus one batch (with stuck messages, up to cap + 3 x batch_size:
  /// below); but at least one, so that a partition holding the
  /// watermark back can always deliver.
  ///
  /// Messages of paused partitions are stuck until the watermark reaches
  /// them, and the consumer cannot send more of them; so the partitions
  /// still read (the ones holding the watermark back) keep a batch of room
  /// of their own beside them, instead of delivering one message per round
  /// trip (which made a skewed replay crawl). Stuck are also the messages
  /// of partitions behind the pause line whose next message cannot go yet:
  /// below cap + 2 x batch_size they are not paused (decide_pauses), as
  /// they are the ones that must be read, and they would otherwise take
  /// the room of the one the hold waits for (a partition an hour behind
  /// replayed a message per round trip, watermark_core_test). Held messages
  /// (units, with unit_bytes) therefore stay within cap + 3 x batch_size,
  /// plus at most one message per partition (of any size): past cap + 2 x
  /// batch_size with nothing releasable, every partition holding a message
  /// is stuck and paused, so the credit
  /// goes to partitions holding nothing; past cap + 3 x batch_size it is
  /// one message, to a partition holding nothing, which then holds one.
  /// This bound does not depend on which partitions are read (pause_line).
  ///
  /// While a partition replaying has delivered nothing yet (at start-up,
  /// or assigned by the group since), what is read cannot go until it has:
  /// the credit keeps the held messages within the cap alone, and the
  /// consumer reads the first message of each silent partition beside it
  /// (read_round). The messages read by then may all turn out far ahead
  /// (librdkafka's first fetches bring some partitions before others), so
  /// they keep at most the cap and leave the partitions behind the
  /// batches beyond it; granted the whole bound of then, the ones ahead
  /// took all of it and the ones behind replayed one message per round
  /// trip (bench case 5, 47 s instead of 1 s, in 2 of 4 runs).
  size_t allowance() const {
    if (!wants_more())
      return 0;
    auto limit = config_.hold_cap() + (silent_ ? 0 : config_.batch_size);
    auto room = load_ < limit ? limit - load_ : 0;
    if (counters_.paused_partitions > 0 && room < config_.batch_size && !silent_) {
      size_t stuck = 0;
      auto f = frontier();
      for (uint32_t pid = 0; pid < parts_.size(); ++pid) {
        auto& p = parts_[pid];
        if (p.paused || waits(pid, f))
          stuck += p.units;
      }
      auto active = load_ - std::min(stuck, load_);
      auto outer = stuck_read_limit() + config_.batch_size;
      if (active < config_.batch_size && load_ < outer)
        room = std::max(room, std::min(config_.batch_size - active, outer - load_));
    }
    return std::clamp<size_t>(room, 1, config_.batch_size);
  }

  // -- state ------------------------------------------------------------------

  bool live() const noexcept { return live_; }

  /// True once, right after the switch to live.
  bool take_went_live() noexcept { return std::exchange(went_live_, false); }

  /// Partitions that went idle since the last call, each reported once in
  /// the core's life (the orchestrator logs them).
  std::vector<uint32_t> take_idled() { return std::exchange(idled_, {}); }

  /// The timestamp of the oldest message held, if any.
  std::optional<timestamp> oldest_held() const {
    std::optional<timestamp> result;
    for (auto& p : parts_)
      if (!p.fifo.empty() && (!result || p.fifo.front().ts < *result))
        result = p.fifo.front().ts;
    return result;
  }

  /// Whether partition `pid` is idle now.
  bool idle(uint32_t pid) const { return is_idle(parts_[pid]); }

  /// The low watermark (`timestamp::min()` until every replaying partition
  /// delivered something).
  timestamp watermark() const noexcept { return watermark_; }
  bool has_watermark() const noexcept { return watermark_ != timestamp::min(); }

  /// Whether an update is due after pushes.
  bool dirty() const noexcept { return dirty_; }

  bool caught_up(uint32_t pid) const { return parts_[pid].caught_up; }
  bool paused(uint32_t pid) const { return parts_[pid].paused; }
  size_t held(uint32_t pid) const { return parts_[pid].fifo.size(); }
  /// Messages received from partition `pid` (released: received - held -
  /// dropped).
  uint64_t received(uint32_t pid) const { return parts_[pid].received; }
  /// Messages of partition `pid` dropped at revocations.
  uint64_t dropped(uint32_t pid) const { return parts_[pid].dropped; }
  int64_t position(uint32_t pid) const { return parts_[pid].position; }
  int64_t end_offset(uint32_t pid) const { return parts_[pid].end_offset; }
  std::optional<timestamp> latest(uint32_t pid) const { return parts_[pid].latest; }
  size_t partitions() const noexcept { return parts_.size(); }
  size_t held() const noexcept { return counters_.held; }
  /// The units of the hold the held messages take (`held()` when
  /// `unit_bytes` is 0): what the cap and the allowance count.
  size_t held_units() const noexcept { return load_; }
  const watermark_counters& counters() const noexcept { return counters_; }
  const watermark_config& config() const noexcept { return config_; }

private:
  struct entry {
    timestamp ts;
    int64_t offset;
    Msg msg;
    uint32_t bytes;
    uint32_t units;
  };

  /// A message's place in the merged order, offsets aside (within a
  /// partition, offset order).
  struct key {
    timestamp ts;
    uint32_t pid;
    friend auto operator<=>(const key&, const key&) = default;
  };

  /// The smallest key partition `pid` can still deliver when it holds
  /// nothing: (latest, pid) while it replays; before any timestamp, the
  /// beginning of time (it holds everything back); none when it is caught
  /// up, idle, or has delivered only messages without timestamps.
  /// In replay, whether `pid` holds a message that cannot go yet: its next
  /// ties or follows the frontier `f`.
  bool waits(uint32_t pid, const key& f) const {
    auto& p = parts_[pid];
    return !live_ && !p.fifo.empty() && !(key{p.fifo.front().ts, pid} < f);
  }

  /// Below this many held, partitions behind the pause line are read
  /// though their next message waits (decide_pauses), and past it the room
  /// of the partitions still read goes one batch further (allowance):
  /// cap + 2 x batch_size.
  size_t stuck_read_limit() const {
    return config_.hold_cap() + 2 * config_.batch_size;
  }

  std::optional<key> bound_of(uint32_t pid) const {
    auto& p = parts_[pid];
    if (live_ || !replaying(p))
      return std::nullopt;
    if (!p.latest) {
      if (p.untimed)
        return std::nullopt;
      return key{timestamp::min(), pid};
    }
    return key{*p.latest, pid};
  }

  /// The least bound over the partitions that hold nothing.
  key frontier() const {
    key f{timestamp::max(), std::numeric_limits<uint32_t>::max()};
    for (uint32_t pid = 0; pid < parts_.size(); ++pid)
      if (parts_[pid].fifo.empty())
        if (auto bound = bound_of(pid))
          f = std::min(f, *bound);
    return f;
  }

  struct part {
    std::deque<entry> fifo;
    /// The units of the hold `fifo` takes.
    size_t units = 0;
    std::optional<timestamp> latest;
    int64_t position = 0;
    int64_t end_offset = 0;
    uint64_t received = 0;
    /// Messages dropped when the group revoked the partition.
    uint64_t dropped = 0;
    /// Time without a message while the broker answered and the partition
    /// was read.
    duration silent{0};
    bool caught_up = false;
    /// Reported by take_idled (once).
    bool reported_idle = false;
    /// The leading broker's slot in brokers_.
    uint32_t broker = 0;
    bool paused = false;
    /// Reached the stop of a bounded replay.
    bool finished = false;
    // Delivered messages without timestamps only: does not hold the
    // watermark back.
    bool untimed = false;
    /// Read by this instance (always, unless partitions come from a group).
    bool owned = true;
  };

  void heard_from(uint32_t pid, timestamp now) {
    count_silence(pid, now);
    parts_[pid].silent = duration::zero();
  }

  bool is_idle(const part& p) const { return p.silent >= config_.idle_timeout; }

  /// Still replaying: read by this instance, not caught up, not idle (what
  /// the watermark, the frontier and the pause line are taken over).
  bool replaying(const part& p) const { return p.owned && !p.caught_up && !is_idle(p); }

  // The broker leading `pid` answered at `now`: the other partitions it
  // leads that are read and silent since its last answer, if that was at
  // most answer_window ago, were silent while it answered. A longer gap
  // (the broker down, frozen, unreachable, or a broker error in between)
  // counts for nobody, and neither does another broker's answer.
  void count_silence(uint32_t answering, timestamp now) {
    auto broker = parts_[answering].broker;
    if (last_answer_.size() < brokers_.size())
      last_answer_.resize(brokers_.size());
    auto& last = last_answer_[broker];
    auto previous = last;
    last = std::max(last.value_or(now), now);
    if (!previous || now <= *previous || live_)
      return;
    auto elapsed = now - *previous;
    if (elapsed > config_.answer_window)
      return;
    for (uint32_t pid = 0; pid < parts_.size(); ++pid) {
      auto& p = parts_[pid];
      if (pid == answering || p.broker != broker || p.caught_up || p.paused || !p.owned ||
          is_idle(p))
        continue;
      p.silent += elapsed;
      if (is_idle(p)) {
        ++counters_.idled;
        if (!p.reported_idle) {
          p.reported_idle = true;
          idled_.push_back(pid);
        }
      }
    }
  }

  void advance_watermark(timestamp) {
    // The minimum, over partitions still replaying and not idle, of the
    // latest timestamp seen; one that saw nothing yet holds everything back.
    std::optional<timestamp> candidate;
    bool any_active = false;
    bool blocked = false;
    for (auto& p : parts_) {
      if (!replaying(p))
        continue;
      if (!p.latest) {
        if (p.untimed)
          continue;
        blocked = true;
        break;
      }
      any_active = true;
      if (!candidate || *p.latest < *candidate)
        candidate = p.latest;
    }
    silent_ = blocked;
    if (blocked)
      return;
    if (!any_active) {
      // Only caught-up or idle partitions remain: everything seen so far may go.
      for (auto& p : parts_)
        if (p.latest && (!candidate || *candidate < *p.latest))
          candidate = p.latest;
    }
    if (!candidate)
      return;
    if (watermark_ < *candidate)
      watermark_ = *candidate;
  }

  /// Where pausing at the cap starts: past the latest timestamp of the
  /// k-th partition from the back, among the P partitions still replaying
  /// (owned, not idle, with a timestamp): k = P x batch_size / cap rounded
  /// up (at least 1: the watermark itself). The line moves back when k
  /// drops (a partition caught up, say). At the cap a partition holds about
  /// cap / partitions messages, so a cycle's worth of release needs the
  /// k partitions furthest behind to move on: they are read together, in
  /// one round trip, instead of one partition per round trip (with 256
  /// partitions that released a dozen messages per round). What the
  /// consumer may send stays bounded by `allowance`, whichever partitions
  /// are read.
  timestamp pause_line() {
    latest_scratch_.clear();
    for (auto& p : parts_)
      if (replaying(p) && p.latest)
        latest_scratch_.push_back(*p.latest);
    auto k = (latest_scratch_.size() * config_.batch_size + config_.hold_cap() - 1) /
             std::max<size_t>(config_.hold_cap(), 1);
    if (k <= 1 || latest_scratch_.size() <= 1)
      return watermark_;
    k = std::min(k, latest_scratch_.size());
    auto kth = latest_scratch_.begin() + static_cast<std::ptrdiff_t>(k - 1);
    std::nth_element(latest_scratch_.begin(), kth, latest_scratch_.end());
    return std::max(watermark_, *kth);
  }

  void decide_pauses() {
    // A partition whose next message cannot go yet (it ties or follows the
    // frontier: many messages at one timestamp) is paused at the cap like
    // one ahead of the watermark, and stays paused until that message can
    // go, or the hold would grow past the cap; but see the exception for
    // the partitions behind the pause line below.
    bool at_cap = load_ >= config_.hold_cap();
    // Below the cap with nothing paused, nothing pauses or resumes.
    if (!at_cap && counters_.paused_partitions == 0)
      return;
    auto f = live_ ? key{timestamp::max(), 0} : frontier();
    auto line = live_ ? watermark_ : pause_line();
    for (uint32_t pid = 0; pid < parts_.size(); ++pid) {
      auto& p = parts_[pid];
      if (p.finished || !p.owned)
        continue;
      // Not one behind the pause line, below cap + 2 x batch_size once every
      // partition replaying has delivered: the line's partitions are the
      // ones to read, and paused one message each they delivered one per
      // round trip (allowance).
      bool stuck = waits(pid, f) && !(!silent_ && p.latest && *p.latest < line &&
                                      load_ < stuck_read_limit());
      bool ahead = !live_ && ((p.latest && line < *p.latest) ||
                              (stuck && (p.paused || at_cap)));
      if (p.paused && !ahead) {
        p.paused = false;
        to_resume_.push_back(pid);
        ++counters_.resumes;
        --counters_.paused_partitions;
      } else if (!p.paused && ahead && at_cap) {
        p.paused = true;
        to_pause_.push_back(pid);
        ++counters_.pauses;
        ++counters_.paused_partitions;
      }
    }
  }

  watermark_config config_;
  std::vector<part> parts_;
  timestamp watermark_ = timestamp::min();
  bool live_ = false;
  bool went_live_ = false;
  bool dirty_ = false;
  bool awaiting_assignment_ = false;
  /// At the last update, a partition replaying (owned, not caught up, not
  /// idle) had delivered nothing with a timestamp yet: at start-up, or
  /// assigned by the group since (the watermark is then the one before).
  bool silent_ = false;
  /// pause_line's working space.
  std::vector<timestamp> latest_scratch_;
  std::vector<uint32_t> to_pause_;
  std::vector<uint32_t> to_resume_;
  std::vector<uint32_t> idled_;
  std::vector<uint32_t> finished_;
  size_t finished_count_ = 0;
  /// The brokers leading the partitions, by slot.
  std::vector<int32_t> brokers_;
  /// When each broker (slot) last answered: a message or an end of partition.
  std::vector<std::optional<timestamp>> last_answer_;
  watermark_counters counters_;
  /// The units of the hold taken (held_units).
  size_t load_ = 0;
};

} // namespace castor
