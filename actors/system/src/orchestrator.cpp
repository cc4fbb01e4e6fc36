// SPDX-License-Identifier: Apache-2.0
#include "castor/orchestrator.hpp"

#include "castor/error.hpp"
#include "castor/logger.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>

namespace castor {

caf::error orchestrator_config::validate() const {
  if (watermark.batch_size == 0)
    return make_error(ec::invalid_config, "batch_size must be at least 1");
  if (releases_in_flight == 0)
    return make_error(ec::invalid_config, "releases_in_flight must be at least 1");
  if (watermark.idle_timeout <= duration::zero())
    return make_error(ec::invalid_config, "idle_timeout must be positive");
  if (!(replay_speed >= 0))
    return make_error(ec::invalid_config, "replay_speed must not be negative");
  return {};
}

duration orchestrator_config::tick_period() const {
  if (progress_interval > duration::zero())
    return std::min(tick_interval, progress_interval);
  return tick_interval;
}

timestamp orchestrator_state::now(
    orchestrator_actor::stateful_pointer<orchestrator_state> self) const {
  return timestamp{
      std::chrono::duration_cast<duration>(self->clock().now().time_since_epoch())};
}

void orchestrator_state::after_change(
    orchestrator_actor::stateful_pointer<orchestrator_state> self) {
  if (auto pauses = core->take_pauses(); !pauses.empty()) {
    logger()->debug(
        "orchestrator: pauses {} partition(s) ahead of the watermark ({} held)",
        pauses.size(), core->held());
    self->send(consumer, pause_atom::value, std::move(pauses));
  }
  if (auto resumes = core->take_resumes(); !resumes.empty())
    self->send(consumer, resume_atom::value, std::move(resumes));
  for (auto pid : core->take_idled()) {
    auto& e = parts.partitions[pid];
    logger()->warn("orchestrator: {}[{}] delivered nothing for {} while the broker "
                   "answered for other partitions: it no longer holds the watermark "
                   "back, so replay order is relaxed for it (its later messages may be "
                   "late; engine.idle_timeout)",
                   e.topic, e.partition, format_duration(config.watermark.idle_timeout));
  }
  if (core->take_went_live()) {
    if (core->has_watermark())
      logger()->info("orchestrator: every partition is caught up: live (watermark {})",
                     to_string(core->watermark()));
    else
      logger()->info("orchestrator: every partition is caught up: live (all at once, "
                     "before any watermark)");
    live_pending = true;
    received_at_live = core->counters().received;
  }
  if (auto done = core->take_finished(); !done.empty()) {
    // Not read again: nothing past the stop is wanted.
    self->send(consumer, pause_atom::value, done);
    for (auto pid : done) {
      auto& e = parts.partitions[pid];
      logger()->debug("orchestrator: {}[{}] reached the stop", e.topic, e.partition);
    }
  }
  held_peak = std::max<uint64_t>(held_peak, core->held());
  held_bytes_peak = std::max(held_bytes_peak, core->counters().held_bytes);
  pump(self);
  // The switch is announced once everything replayed has been released to
  // the DAG and run: a host that stops on it loses nothing of the replay.
  if (live_pending && acked + core->counters().revoked_dropped >= received_at_live) {
    live_pending = false;
    if (config.listener)
      caf::anon_send(config.listener, live_atom::value);
  }
  // A bounded replay: everything before the stop released and run; paced,
  // the last cycles wait for their time too.
  if (core->all_finished() && core->held() == 0 && in_flight == 0 && !draining &&
      !final_sent) {
    auto until = final_limit();
    if (auto paced = paced_until(); paced < until) {
      wake_paced(self, until - paced);
    } else {
      final_sent = true;
      auto batch = std::make_shared<release_batch>();
      batch->watermark = core->watermark();
      batch->complete_until = until;
      batch->final = true;
      logger()->info("orchestrator: every partition reached the stop ({}): the last "
                     "cycles run",
                     config.stop.what == stop_policy::kind::end
                         ? std::string{"the end offsets recorded at start-up"}
                         : castor::to_string(*stop_time));
      send_release(self, std::move(batch));
    }
  }
  if (credit && core->wants_more()) {
    credit->deliver(static_cast<uint32_t>(core->allowance()));
    credit.reset();
  }
}

void orchestrator_state::note_bad_time(uint32_t pid, int64_t offset) {
  ++bad_timestamps;
  if (warned_bad_time.size() < parts.partitions.size())
    warned_bad_time.resize(parts.partitions.size(), false);
  if (warned_bad_time[pid])
    return;
  warned_bad_time[pid] = true;
  auto& e = parts.partitions[pid];
  logger()->warn("orchestrator: {}[{}] offset {} has a timestamp more than {} ms from "
                 "the epoch (castor takes about 1811 to 2128): it is ordered as a "
                 "message without one; counted in bad_timestamps, warned once per "
                 "partition",
                 e.topic, e.partition, offset, max_timestamp_ms);
}

void orchestrator_state::check_stall(timestamp now) {
  if (core->live())
    return;
  auto w = core->watermark();
  if (!watched_watermark || *watched_watermark != w) {
    watched_watermark = w;
    watermark_since = now;
    warned_stall = false;
    return;
  }
  if (warned_stall || now - watermark_since < config.watermark.idle_timeout)
    return;
  warned_stall = true;
  std::string waits;
  for (uint32_t pid = 0; pid < parts.partitions.size(); ++pid) {
    if (core->caught_up(pid) || !core->owned(pid) || core->idle(pid) || core->paused(pid))
      continue;
    auto latest = core->latest(pid);
    if (latest && *latest > w)
      continue;
    auto& e = parts.partitions[pid];
    waits += fmt::format("{}{}[{}]", waits.empty() ? "" : ", ", e.topic, e.partition);
  }
  logger()->warn("orchestrator: the watermark has not moved for {}: it waits for {} "
                 "(nothing from them, and their broker answers nothing else: an outage "
                 "keeps the order, so castor waits)",
                 format_duration(now - watermark_since),
                 waits.empty() ? std::string{"the executor"} : waits);
}

std::vector<partition_progress> orchestrator_state::progress() const {
  std::vector<partition_progress> result;
  result.reserve(parts.partitions.size());
  for (uint32_t pid = 0; pid < parts.partitions.size(); ++pid) {
    auto& e = parts.partitions[pid];
    partition_progress p;
    p.topic = e.topic;
    p.partition = e.partition;
    p.start_offset = e.start_offset;
    p.end_offset = e.end_offset;
    p.caught_up = core->caught_up(pid);
    p.position =
        p.caught_up ? std::max(core->position(pid), e.end_offset) : core->position(pid);
    p.held = core->held(pid);
    p.paused = core->paused(pid);
    if (pid < released.size()) {
      auto& r = released[pid];
      p.released = r.count;
      p.first_ms = r.first_ms;
      p.last_ms = r.last_ms;
      p.next_offset = r.next_offset;
      p.beyond_stop = beyond_stop[pid];
    }
    p.finished = core->finished(pid);
    p.assigned = core->owned(pid);
    if (!p.assigned) {
      // Not read here: nothing to replay (and no claim about its progress).
      p.start_offset = p.end_offset = p.position = core->position(pid);
      p.caught_up = false;
    }
    result.push_back(std::move(p));
  }
  return result;
}

void orchestrator_state::log_progress(timestamp now) {
  auto elapsed = std::chrono::duration<double>(now - last_progress).count();
  auto received = core->counters().received;
  auto rate = elapsed > 0 ? (received - received_at_last_progress) / elapsed : 0.0;
  last_progress = now;
  received_at_last_progress = received;
  // Per topic: offsets read out of offsets to read (partitions are in
  // topic order).
  std::string topics;
  int64_t remaining = 0;
  auto parts = progress();
  // With a group: the partitions this instance reads.
  std::erase_if(parts, [](const partition_progress& p) { return !p.assigned; });
  for (size_t i = 0; i < parts.size();) {
    auto& topic = parts[i].topic;
    int64_t done = 0;
    int64_t total = 0;
    for (; i < parts.size() && parts[i].topic == topic; ++i) {
      done += parts[i].replay_done();
      total += parts[i].replay_total();
    }
    remaining += total - done;
    topics += fmt::format("{}{} {:.1f}%", topics.empty() ? "" : ", ", topic,
                          total > 0 ? 100.0 * static_cast<double>(done) / total : 100.0);
  }
  auto eta = rate > 0 ? fmt::format("{:.0f}s", remaining / rate) : std::string{"unknown"};
  logger()->info("orchestrator: replay: {}; watermark {}; {:.0f} msg/s; {} left, ETA {}; "
                 "{} held, {} paused",
                 topics, to_string(core->watermark()), rate, remaining, eta, core->held(),
                 core->counters().paused_partitions);
}

pipeline_stats orchestrator_state::stats(
    orchestrator_actor::stateful_pointer<orchestrator_state> self) const {
  pipeline_stats stats;
  stats.held_peak = held_peak;
  stats.held_bytes_peak = held_bytes_peak;
  if (!core)
    return stats;
  auto& c = core->counters();
  stats.consumed = c.received;
  stats.released = c.released;
  stats.held = c.held;
  stats.held_bytes = c.held_bytes;
  stats.paused_partitions = c.paused_partitions;
  stats.pauses = c.pauses;
  stats.resumes = c.resumes;
  stats.late = c.late;
  stats.idled = c.idled;
  stats.bad_timestamps = bad_timestamps;
  stats.revoked_dropped = c.revoked_dropped;
  stats.live = core->live();
  stats.finished = finished;
  for (auto n : beyond_stop)
    stats.beyond_stop += n;
  // Read, too: messages past the stop were consumed (and dropped).
  stats.consumed += stats.beyond_stop;
  if (core->has_watermark())
    stats.watermark_ms = to_millis(core->watermark());
  auto wall = wall_clock_now();
  if (core->live()) {
    auto oldest = core->oldest_held();
    stats.lag_seconds =
        oldest ? std::max(0.0, std::chrono::duration<double>(wall - *oldest).count())
               : 0.0;
  } else if (core->has_watermark()) {
    stats.lag_seconds = std::chrono::duration<double>(wall - core->watermark()).count();
  }
  auto elapsed = std::chrono::duration<double>(now(self) - started).count();
  stats.rate = elapsed > 0 ? static_cast<double>(c.received) / elapsed : 0.0;
  int64_t remaining = 0;
  stats.partitions = progress();
  for (uint32_t pid = 0; pid < stats.partitions.size(); ++pid) {
    auto& p = stats.partitions[pid];
    remaining += p.replay_total() - p.replay_done();
    auto& t = topic_of(stats, p.topic);
    t.consumed += core->received(pid) + (pid < beyond_stop.size() ? beyond_stop[pid] : 0);
    t.released += core->received(pid) - p.held - core->dropped(pid);
  }
  if (core->live())
    stats.eta_seconds = 0;
  else if (stats.rate > 0)
    stats.eta_seconds = static_cast<double>(remaining) / stats.rate;
  return stats;
}

timestamp orchestrator_state::final_limit() const {
  if (stop_time)
    return *stop_time - duration{1};
  return last_released.value_or(timestamp::min());
}

bool orchestrator_state::past_stop(uint32_t pid, const consumed_message& m) {
  bool past = core->finished(pid) ||
              (config.stop.what == stop_policy::kind::end &&
               m.offset() >= parts.partitions[pid].end_offset) ||
              (stop_time && m.time() && *m.time() >= *stop_time);
  if (past) {
    ++beyond_stop[pid];
    core->finish(pid);
  }
  return past;
}

void orchestrator_state::check_stop(
    orchestrator_actor::stateful_pointer<orchestrator_state>) {
  if (!config.stop.bounded())
    return;
  // A caught-up partition is finished at the end offsets; at a stop time,
  // once the wall clock has reached it (until then new messages may still
  // come before it).
  // A second of grace after a stop time: what was produced just before it
  // may still be on its way.
  bool reached = config.stop.what == stop_policy::kind::end ||
                 (stop_time && wall_clock_now() >= *stop_time + std::chrono::seconds{1});
  for (uint32_t pid = 0; pid < parts.partitions.size(); ++pid)
    if (!core->finished(pid) && core->caught_up(pid) && reached)
      core->finish(pid);
  if (!core->live() && !core->all_finished() && core->all_caught_up())
    core->go_live();
}

bool orchestrator_state::replaying() const {
  // What was held at the switch to live is replay too.
  auto& c = core->counters();
  return !core->live() || c.released + c.revoked_dropped < received_at_live;
}

void orchestrator_state::wake_paced(
    orchestrator_actor::stateful_pointer<orchestrator_state> self, duration ahead) {
  if (pace_wake_pending)
    return;
  pace_wake_pending = true;
  // When `ahead` of event time is due, and at least every 50 ms (timers
  // between messages).
  auto wait = duration{std::chrono::milliseconds{50}};
  if (ahead != duration::max())
    wait =
        std::min(wait, std::chrono::duration_cast<duration>(ahead / config.replay_speed));
  self->delayed_send(self, std::max(wait, duration{std::chrono::milliseconds{1}}),
                     wake_atom::value);
}

void orchestrator_state::send_release(
    orchestrator_actor::stateful_pointer<orchestrator_state> self,
    std::shared_ptr<release_batch> batch) {
  ++in_flight;
  auto count = batch->messages.size();
  auto last = batch->final;
  self->request(executor, caf::infinite, std::move(batch))
      .then(
          [self, count, last](ack_atom) {
            auto& st = self->state;
            --st.in_flight;
            st.acked += count;
            if (last) {
              st.finished = true;
              if (st.finish_promise) {
                st.finish_promise->deliver(ack_atom::value);
                st.finish_promise.reset();
              }
            }
            if (st.draining && st.in_flight == 0 && st.drained) {
              st.drained->deliver(ack_atom::value);
              st.drained.reset();
            }
            st.after_change(self);
          },
          [self](caf::error& err) { self->quit(std::move(err)); });
}

timestamp orchestrator_state::paced_until() const {
  // Paced until everything replayed has gone.
  if (config.replay_speed <= 0 || !pace_event0 || !replaying())
    return timestamp::max();
  auto elapsed = std::chrono::duration<double>(wall_clock_now() - pace_wall0).count();
  auto ahead = elapsed * config.replay_speed * 1e9; // ns of event time
  auto room = static_cast<double>((timestamp::max() - *pace_event0).count());
  if (!(ahead < room))
    return timestamp::max();
  return *pace_event0 + duration{static_cast<int64_t>(ahead)};
}

timestamp orchestrator_state::limit(timestamp complete) const {
  auto result = std::min(complete, paced_until());
  if (stop_time)
    result = std::min(result, *stop_time - duration{1});
  else if (config.stop.what == stop_policy::kind::end)
    result = std::min(result, last_released.value_or(timestamp::min()));
  return result;
}

void orchestrator_state::pump(
    orchestrator_actor::stateful_pointer<orchestrator_state> self) {
  while (!draining && in_flight < config.releases_in_flight) {
    // An empty release is worth sending when time moved: the executor runs
    // what is complete and fires the timers due (and, at the switch to live,
    // the last timestamp of the replay, which nothing after it completes).
    if (final_sent)
      return;
    auto head = core->head_time();
    bool releasable = core->releasable();
    // Pacing starts at the first message that can go (the release rule
    // makes it the earliest of all).
    if (config.replay_speed > 0 && !pace_event0 && replaying() && releasable && head) {
      pace_event0 = *head;
      pace_wall0 = wall_clock_now();
    }
    auto paced = paced_until();
    auto complete = limit(core->complete_until());
    bool advanced = complete != timestamp::min() &&
                    (!last_sent_complete || *last_sent_complete < complete);
    bool due = releasable && (!head || *head <= paced);
    if (!due && !advanced) {
      // Paced: wake when the next message is due (and meanwhile, for the
      // timers between messages).
      if (paced != timestamp::max())
        wake_paced(self, head && *head > paced ? *head - paced : duration::max());
      return;
    }
    auto batch = std::make_shared<release_batch>();
    batch->messages.reserve(std::min(config.watermark.batch_size, core->held()));
    times.clear();
    core->release(batch->messages, &times, paced);
    for (size_t i = 0; i < times.size(); ++i) {
      auto& m = batch->messages[i];
      m.order_time = times[i];
      auto& r = released[m.pid()];
      ++r.count;
      if (auto t = m.time()) {
        auto ms = to_millis(*t);
        if (r.first_ms == INT64_MIN)
          r.first_ms = ms;
        r.last_ms = std::max(r.last_ms, ms);
      }
      r.next_offset = m.offset() + 1;
    }
    if (!times.empty() && (!last_released || *last_released < times.back()))
      last_released = times.back(); // released in order
    batch->watermark = core->watermark();
    batch->complete_until = limit(core->complete_until());
    batch->live = core->live();
    last_sent_complete = batch->complete_until;
    send_release(self, std::move(batch));
    // Releasing may resume partitions and free the consumer's credit.
    if (auto resumes = core->take_resumes(); !resumes.empty())
      self->send(consumer, resume_atom::value, std::move(resumes));
  }
}

orchestrator_actor::behavior_type
orchestrator(orchestrator_actor::stateful_pointer<orchestrator_state> self,
             orchestrator_config config, executor_actor executor) {
  if (auto err = config.validate()) {
    self->quit(err);
  }
  self->state.config = std::move(config);
  self->state.executor = std::move(executor);
  return {
      [self](start_atom, partition_table_ptr& table, consumer_actor& consumer) {
        auto& st = self->state;
        st.table = table;
        st.parts = *table;
        st.consumer = std::move(consumer);
        std::vector<partition_bounds> bounds;
        bounds.reserve(table->partitions.size());
        for (auto& e : table->partitions)
          bounds.push_back({e.start_offset, e.end_offset, e.leader});
        auto n = table->partitions.size();
        st.beyond_stop.assign(n, 0);
        st.released.assign(n, {});
        auto& stop = st.config.stop;
        if (stop.what == stop_policy::kind::at) {
          auto t = stop.resolve(wall_clock_now());
          if (!t) {
            self->quit(to_error(t.error()));
            return;
          }
          st.stop_time = *t;
          logger()->info("orchestrator: a bounded replay: nothing at or after {} is "
                         "released (engine.stop = {}); castor exits once every partition "
                         "reached it",
                         castor::to_string(*t), stop.to_string());
        } else if (stop.what == stop_policy::kind::end) {
          logger()->info("orchestrator: a bounded replay: every partition stops at the "
                         "end offset recorded at start-up (engine.stop = end); castor "
                         "exits once all have");
        }
        st.config.watermark.bounded = stop.bounded();
        st.core = std::make_unique<watermark_core<consumed_message>>(
            std::move(bounds), st.config.watermark, st.now(self));
        st.check_stop(self);
        st.last_progress = st.now(self);
        st.started = st.last_progress;
        self->send(st.executor, start_atom::value, table);
        self->delayed_send(self, st.config.tick_period(), tick_atom::value);
        st.after_change(self);
      },
      [self](consumed_batch_ptr& batch) -> caf::result<uint32_t> {
        auto& st = self->state;
        auto now = st.now(self);
        for (auto& m : batch->messages) {
          auto pid = m.pid();
          if (m.time_out_of_range())
            st.note_bad_time(pid, m.offset());
          if (st.config.stop.bounded() && st.past_stop(pid, m))
            continue;
          auto offset = m.offset();
          auto time = m.time();
          auto bytes = m.bytes();
          st.core->push(pid, offset, time, std::move(m), now, bytes);
        }
        for (auto pid : batch->end_of_partition)
          st.core->end_of_partition(pid, now);
        if (batch->broker_errors > 0)
          st.core->broker_trouble();
        st.check_stop(self);
        st.core->update(now);
        auto promise = self->make_response_promise<uint32_t>();
        st.credit = promise;
        st.after_change(self);
        return promise;
      },
      [self](tick_atom) {
        auto& st = self->state;
        if (st.core) {
          auto now = st.now(self);
          st.check_stop(self);
          st.core->update(now);
          st.after_change(self);
          if (!st.core->all_finished())
            st.check_stall(now);
          auto interval = st.config.progress_interval;
          if (!st.core->live() && !st.core->all_finished() &&
              st.core->owned_partitions() > 0 && interval > duration::zero() &&
              now - st.last_progress >= interval)
            st.log_progress(now);
        }
        self->delayed_send(self, st.config.tick_period(), tick_atom::value);
      },
      [self](drain_atom) -> caf::result<ack_atom> {
        auto& st = self->state;
        st.draining = true;
        if (st.in_flight == 0)
          return ack_atom::value;
        auto promise = self->make_response_promise<ack_atom>();
        st.drained = promise;
        return promise;
      },
      [self](stats_atom) { return self->state.stats(self); },
      [self](assign_atom, std::vector<partition_assignment>& assigned) {
        auto& st = self->state;
        if (!st.core)
          return;
        bool was_live = st.core->live();
        for (auto& a : assigned) {
          if (a.pid >= st.parts.partitions.size())
            continue;
          auto& e = st.parts.partitions[a.pid];
          e.start_offset = a.start_offset;
          e.end_offset = a.end_offset;
          e.how = a.how;
          st.core->assign(a.pid, a.start_offset, a.end_offset);
        }
        st.core->assignment_received();
        if (was_live && !st.core->live())
          logger()->info("orchestrator: replays the partitions the group assigned, in "
                         "timestamp order with the others; live again once they are "
                         "caught up");
        st.core->update(st.now(self));
        st.after_change(self);
      },
      [self](revoke_atom, std::vector<uint32_t>& pids) -> caf::result<revocation> {
        auto& st = self->state;
        uint64_t dropped = 0;
        if (st.core) {
          for (auto pid : pids) {
            if (pid >= st.parts.partitions.size())
              continue;
            auto n = st.core->revoke(pid);
            dropped += n;
            if (n > 0) {
              auto& e = st.parts.partitions[pid];
              logger()->debug("orchestrator: {}[{}] revoked: {} held message(s) dropped",
                              e.topic, e.partition, n);
            }
          }
          st.core->update(st.now(self));
          st.after_change(self);
        }
        // Releases sent before this are ahead of it in the executor's
        // mailbox: its answer comes after they ran.
        auto promise = self->make_response_promise<revocation>();
        self->request(st.executor, caf::infinite, revoke_atom::value, std::move(pids))
            .then(
                [promise, dropped](revocation& r) mutable {
                  r.dropped += dropped;
                  promise.deliver(std::move(r));
                },
                [promise](caf::error& err) mutable { promise.deliver(std::move(err)); });
        return promise;
      },
      [self](finish_atom) -> caf::result<ack_atom> {
        auto& st = self->state;
        if (st.finished)
          return ack_atom::value;
        auto promise = self->make_response_promise<ack_atom>();
        st.finish_promise = promise;
        return promise;
      },
      [self](wake_atom) {
        auto& st = self->state;
        st.pace_wake_pending = false;
        if (st.core)
          st.after_change(self);
      },
  };
}

} // namespace castor
