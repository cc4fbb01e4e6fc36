// SPDX-License-Identifier: Apache-2.0
#include "castor/consumer.hpp"

#include "castor/error.hpp"
#include "castor/logger.hpp"
#include "castor/read_order.hpp"
#include "castor/watermark_core.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace castor {

caf::error consumer_config::validate() const {
  if (topics.empty())
    return make_error(ec::invalid_config, "the consumer has no topics");
  if (batch_size == 0)
    return make_error(ec::invalid_config, "batch_size must be at least 1");
  if (!properties.contains("bootstrap.servers"))
    return make_error(
        ec::invalid_config,
        "the consumer needs bootstrap.servers (the Kafka cluster's address)");
  if (group && !commits())
    return make_error(ec::invalid_config,
                      "group assignment needs a consumer group: set group.id "
                      "(kafka.group_id)");
  return {};
}

consumer_state::~consumer_state() {
  // A revocation under way (its partitions' commit was part of the final
  // one): complete it, or librdkafka waits for it and cannot leave the
  // group when it closes.
  if (client && !revoking.empty()) {
    std::vector<uint32_t> pending;
    for (uint32_t pid = 0; pid < revoking.size(); ++pid)
      if (revoking[pid])
        pending.push_back(pid);
    if (!pending.empty())
      client->remove(pending);
  }
  if (client)
    client->close(
        std::chrono::duration_cast<std::chrono::milliseconds>(config.close_timeout));
}

caf::error consumer_state::start(pointer self) {
  if (auto err = config.validate())
    return err;
  auto made = kafka::consumer_client::make(config.properties, config.group);
  if (!made)
    return to_error(made.error());
  client = std::move(*made);
  commits = client->has_group() && producer;

  // Resolve where every partition starts, in (topic, partition) order.
  auto timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.startup_timeout);
  auto queries = client->queries(timeout, config.cancel);
  auto topics = config.topics;
  std::sort(topics.begin(), topics.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  auto result = std::make_shared<partition_table>();
  auto now = wall_clock_now();
  auto cancelled = [this] { return config.cancel && config.cancel->load(); };
  auto stopped = [] {
    return make_error(ec::stopped, "the pipeline stopped during start-up");
  };
  for (auto& t : topics) {
    if (cancelled())
      return stopped();
    auto leaders = client->partitions(t.name, timeout, config.cancel);
    if (!leaders)
      return to_error(leaders.error());
    for (int32_t p = 0; p < static_cast<int32_t>(leaders->size()); ++p) {
      if (cancelled())
        return stopped();
      if (config.group) {
        // Read once the group assigns it; its start is resolved then.
        result->partitions.push_back(partition_entry{t.name, p, t.source, 0, 0,
                                                     "not assigned",
                                                     (*leaders)[static_cast<size_t>(p)]});
        continue;
      }
      auto start = resolve_start(t.start, {t.name, p}, now, *queries, client->reset());
      if (!start)
        return to_error(start.error());
      note_start_reset(static_cast<uint32_t>(result->partitions.size()), {t.name, p},
                       *start);
      result->partitions.push_back(
          partition_entry{t.name, p, t.source, start->start_offset, start->end_offset,
                          std::move(start->how), (*leaders)[static_cast<size_t>(p)]});
    }
  }
  for (auto& [name, what] : config.output_topics) {
    if (cancelled())
      return stopped();
    auto found = client->partitions(name, timeout, config.cancel);
    if (!found && code_of(found.error()) == ec::unknown_topic)
      return make_error(ec::unknown_topic,
                        fmt::format("{} topic '{}' does not exist", what, name));
    if (!found)
      return to_error(found.error());
  }
  table = result;
  // The prefetch within the memory budget: known once the partitions are.
  // librdkafka's settings are fixed when its client is made, so the client
  // that answered the start-up queries gives way to one made with them.
  if (auto extra = kafka::budget_properties(config.memory_budget,
                                            table->partitions.size(), config.properties);
      !extra.empty()) {
    queries.reset();
    auto props = config.properties;
    props.insert(extra.begin(), extra.end());
    client->close(
        std::chrono::duration_cast<std::chrono::milliseconds>(config.close_timeout));
    client.reset();
    auto remade = kafka::consumer_client::make(props, config.group);
    if (!remade)
      return to_error(remade.error());
    client = std::move(*remade);
    logger()->info(
        "consumer: memory budget {} KiB over {} partition(s): librdkafka "
        "prefetches up to {} KiB or {} messages per partition "
        "(queued.max.messages.kbytes, queued.min.messages); the "
        "orchestrator's hold counts {}",
        config.memory_budget / 1024, table->partitions.size(),
        props.at("queued.max.messages.kbytes"), props.at("queued.min.messages"),
        config.unit_bytes > 0
            ? fmt::format("a unit per {} bytes of key and value", config.unit_bytes)
            : std::string{"messages"});
  }
  std::vector<kafka::assignment_entry> assignment;
  for (auto& e : table->partitions) {
    committed.push_back(config.group ? -1 : e.start_offset);
    next_offset.push_back(e.start_offset);
    assignment.push_back({e.topic, e.partition, e.start_offset});
    if (!config.group)
      logger()->info("consumer: starts {}[{}] at offset {} of [{}, end {}) ({})", e.topic,
                     e.partition, e.start_offset, e.start_offset, e.end_offset, e.how);
  }
  auto n = table->partitions.size();
  paused.assign(n, false);
  owned.assign(n, !config.group);
  revoking.assign(n, false);
  at_end.assign(n, false);
  read_latest.assign(n, timestamp::min());
  read_units.assign(n, 1);
  heard.assign(n, false);
  wake_delay = config.fetch_wake_after;
  std::function<void()> on_data;
  if (config.event_driven) {
    wake->target = caf::actor_cast<caf::weak_actor_ptr>(self);
    on_data = wakeup::callback(wake);
  }
  if (config.group) {
    if (auto err = client->subscribe(assignment, std::move(on_data)))
      return to_error(err);
    logger()->info("consumer: joins group '{}' for {} partition(s) of {} topic(s) ({}); "
                   "reads what the group assigns",
                   client->group(), n, topics.size(),
                   config.properties.contains("partition.assignment.strategy")
                       ? config.properties.at("partition.assignment.strategy")
                       : std::string{"cooperative-sticky"});
    // The group's rebalances come through the consumer queue, which must
    // be served even when no data makes the consumer read.
    self->delayed_send(self, config.group_poll_interval, tick_atom::value);
  } else if (auto err = client->assign(assignment, std::move(on_data))) {
    return to_error(err);
  }
  allowance = config.batch_size;
  if (commits) {
    auto& group = client->group();
    if (config.commit_interval > duration::zero()) {
      self->delayed_send(self, config.commit_interval, commit_atom::value);
      logger()->info(
          "consumer: commits progress for group '{}' every {} ms", group,
          std::chrono::duration_cast<std::chrono::milliseconds>(config.commit_interval)
              .count());
    } else {
      logger()->info("consumer: commits progress for group '{}' at a clean stop only",
                     group);
    }
  }
  self->send(orchestrator, start_atom::value, table,
             caf::actor_cast<consumer_actor>(self));
  return {};
}

void consumer_state::commit(const std::vector<int64_t>& positions, commit_done_fn done) {
  if (!commits) {
    if (done)
      done({}, false);
    return;
  }
  // One commit in flight at a time: librdkafka may retry a commit that met
  // an outage after a newer one, and the older offsets would win. A periodic
  // commit that finds one in flight is skipped (the next one carries its
  // offsets); the final commit and a revocation's wait for it.
  if (committing) {
    if (done)
      deferred.push_back(deferred_commit{positions, std::move(done)});
    return;
  }
  // The final commit sends every position it has, even those committed
  // already, so that it is the last word whatever happened before; never
  // one behind where the partition started (a partition assigned again
  // starts past what this instance ran of it before), and, with a group,
  // only partitions this instance reads or is handing over: another
  // instance commits the rest.
  bool all = static_cast<bool>(done);
  std::vector<kafka::committed_offset> offsets;
  auto n = std::min(positions.size(), committed.size());
  for (size_t pid = 0; pid < n; ++pid) {
    if (positions[pid] < 0 || positions[pid] < committed[pid] ||
        (!all && positions[pid] == committed[pid]) || !(owned[pid] || revoking[pid]))
      continue;
    offsets.emplace_back(static_cast<uint32_t>(pid), positions[pid]);
  }
  if (offsets.empty()) {
    if (done)
      done({}, false);
    return;
  }
  logger()->debug("consumer: commits {} partition(s)", offsets.size());
  committing = true;
  commit_done = std::move(done);
  if (auto err = client->commit(offsets))
    on_commit(kafka::commit_result{std::move(err), false, {}});
}

void consumer_state::serve_commits() {
  if (!commits)
    return;
  for (auto& r : client->poll_commits())
    on_commit(r);
}

void consumer_state::on_commit(const kafka::commit_result& r) {
  committing = false;
  auto done = std::exchange(commit_done, nullptr);
  if (r.error && r.rebalancing && config.group) {
    // A commit sent with the generation that is ending: librdkafka takes an
    // ILLEGAL_GENERATION answer as a lost assignment (and drops it all), so
    // periodic commits wait for the rebalance to end (its next event).
    if (!commits_held)
      logger()->info("consumer: the group rebalances: periodic commits wait until "
                     "it ends ({})",
                     render(r.error));
    if (!commits_held)
      held_since = std::chrono::steady_clock::now();
    commits_held = true;
    if (done)
      done(to_error(r.error), r.rebalancing);
    run_deferred();
    return;
  }
  if (r.error) {
    // Nothing is lost: the next commit sends these offsets again.
    logger()->warn("consumer: commit failed: {}; retrying with the next commit",
                   render(r.error));
    if (done)
      done(to_error(r.error), r.rebalancing);
    run_deferred();
    return;
  }
  for (auto [pid, offset] : r.committed)
    if (pid < committed.size())
      committed[pid] = std::max(committed[pid], offset);
  ++stats.commits;
  logger()->debug("consumer: committed {} partition(s)", r.committed.size());
  if (done)
    done({}, false);
  run_deferred();
}

void consumer_state::run_deferred() {
  if (deferred.empty() || committing)
    return;
  auto next = std::move(deferred.front());
  deferred.erase(deferred.begin());
  commit(next.positions, std::move(next.done));
}

void consumer_state::read_and_send(pointer self) {
  wake->reset();
  serve_commits();
  if (in_flight || !client || !table || stopped_reading)
    return;
  auto batch = std::make_shared<consumed_batch>();
  // Error events never join the data: transient ones are logged (librdkafka
  // retries), fatal ones stop the consumer.
  kafka::read_errors errors;
  errors.transient = std::exchange(pending_broker_errors, 0);
  client->read_cluster_errors(errors);
  if (config.group)
    serve_rebalances(self);
  // Then the partitions that are not paused: a first message of each not
  // heard from since its assignment, beside the credit, then the credit
  // furthest behind first (castor/read_order.hpp).
  size_t credit = std::min(allowance, config.batch_size);
  batch->messages.reserve(credit);
  auto count = static_cast<uint32_t>(table->partitions.size());
  readable_scratch.clear();
  for (uint32_t k = 0; k < count; ++k) {
    auto pid = (next_partition + k) % count;
    if (!paused[pid] && owned[pid])
      readable_scratch.push_back(pid);
  }
  if (count > 0)
    next_partition = (next_partition + 1) % count; // ties take turns
  auto read = [&](uint32_t pid, size_t max) {
    chunk_read got;
    if (errors.fatal)
      return got;
    auto first = batch->messages.size();
    bool last_end = at_end[pid];
    // `max` is in units of the hold (read_in_units; messages when
    // unit_bytes is 0).
    auto read_some = [&](size_t ask) {
      unit_chunk got_now;
      auto before = batch->messages.size();
      if (client->read(pid, ask, batch->messages, errors, &last_end) && !got.at_end) {
        batch->end_of_partition.push_back(pid);
        got.at_end = true;
      }
      got_now.messages = batch->messages.size() - before;
      for (auto i = before; i < batch->messages.size(); ++i) {
        auto u = hold_units(batch->messages[i].bytes(), config.unit_bytes);
        got_now.units += u;
        got_now.largest = std::max(got_now.largest, u);
      }
      got_now.stop = got.at_end || errors.fatal;
      return got_now;
    };
    auto units = read_in_units(max, read_units[pid], read_some);
    at_end[pid] = last_end;
    auto& expected = next_offset[pid];
    for (auto i = first; i < batch->messages.size(); ++i) {
      auto offset = batch->messages[i].offset();
      if (offset != expected)
        note_gap(pid, expected, offset);
      expected = offset + 1;
    }
    // The last message with a timestamp (one lookup in librdkafka, not one
    // per message: the orchestrator reads every message's).
    for (auto i = batch->messages.size(); i > first && !got.last_time; --i)
      got.last_time = batch->messages[i - 1].time();
    got.messages = units;
    return got;
  };
  read_round(heap_scratch, readable_scratch, heard, read_latest, credit, read);
  if (errors.fatal) {
    auto err = to_error(errors.fatal);
    logger()->error("consumer: stops: {}", render(err));
    self->quit(err);
    return;
  }
  batch->broker_errors = errors.transient;
  reads += batch->messages.size();
  if (!batch->messages.empty()) {
    // The fetcher works: the next stall is looked at soon again.
    wake_delay = config.fetch_wake_after;
    woke = false;
  }
  if (batch->messages.empty() && batch->end_of_partition.empty() &&
      batch->broker_errors == 0) {
    // The queues' callbacks wake the consumer when data arrives, unless
    // librdkafka's fetcher stopped.
    watch_starvation(self);
    return;
  }
  in_flight = true;
  self->request(orchestrator, caf::infinite, std::move(batch))
      .then(
          [self](uint32_t allowance) {
            self->state.allowance = std::max<uint32_t>(allowance, 1);
            self->state.in_flight = false;
            self->state.read_and_send(self);
          },
          [self](caf::error& err) { self->quit(std::move(err)); });
}

namespace {

std::string names(const partition_table& table, const std::vector<uint32_t>& pids) {
  std::string result;
  for (auto pid : pids) {
    auto& e = table.partitions[pid];
    result += fmt::format("{}{}[{}]", result.empty() ? "" : ", ", e.topic, e.partition);
  }
  return result.empty() ? std::string{"none"} : result;
}

} // namespace

void consumer_state::watch_starvation(pointer self) {
  if (starved_check || config.fetch_wake_after <= duration::zero())
    return;
  starved_check = true;
  starved_since = std::chrono::steady_clock::now();
  // First a look after fetch_wake_early: check_starved wakes the fetcher
  // then only if the broker holds far more than was read.
  auto delay = wake_delay;
  if (!woke && config.fetch_wake_early > duration::zero())
    delay = std::min(delay, config.fetch_wake_early);
  self->delayed_send(self, delay, wake_atom::value, reads);
}

void consumer_state::check_starved(pointer self, uint64_t reads_then) {
  starved_check = false;
  if (!client || !table || stopped_reading)
    return;
  if (reads != reads_then) {
    // Messages came (read_and_send reset the back-off). Watch again if
    // nothing is in flight (a read came back empty while this check was
    // pending).
    if (!in_flight)
      watch_starvation(self);
    return;
  }
  if (in_flight)
    return; // the next empty read watches again
  // A partition read, not at its end, of which the broker holds more than
  // the consumer has read: one per broker (its thread then looks at all its
  // partitions). The leaders are those of start-up: a leader that moved
  // since may leave a broker unwoken in one round, so each round starts at
  // another partition.
  std::vector<int32_t> brokers;
  std::vector<uint32_t> pids;
  bool far = false;
  auto n = static_cast<uint32_t>(table->partitions.size());
  ++wake_rounds;
  for (uint32_t k = 0; k < n; ++k) {
    auto pid = static_cast<uint32_t>((wake_rounds + k) % n);
    if (paused[pid] || !owned[pid] || at_end[pid])
      continue;
    auto high = client->cached_watermarks(pid).second;
    if (high < 0 || next_offset[pid] >= high)
      continue;
    far = far || high - next_offset[pid] >= config.fetch_wake_far;
    auto leader = table->partitions[pid].leader;
    if (std::find(brokers.begin(), brokers.end(), leader) != brokers.end())
      continue;
    brokers.push_back(leader);
    pids.push_back(pid);
  }
  if (pids.empty())
    return;
  auto waited = std::chrono::duration_cast<duration>(std::chrono::steady_clock::now() -
                                                     starved_since);
  if (!far && waited < wake_delay) {
    // A few messages more on the broker: perhaps a fetch on its way (live).
    // Look again when the whole delay has passed.
    starved_check = true;
    self->delayed_send(self, wake_delay - waited, wake_atom::value, reads);
    return;
  }
  // Still nothing after a wake-up: a transaction or a rebalance, say, holds
  // the rest back; look less often (up to once a second).
  if (woke)
    wake_delay = std::min<duration>(wake_delay * 2, std::chrono::seconds{1});
  woke = true;
  if (client->wake_fetcher(pids)) {
    ++stats.fetcher_wakeups;
    logger()->debug("consumer: read nothing for {} while the broker holds more of {} "
                    "(offset {} of {} first): wakes librdkafka's fetcher for {} "
                    "broker(s)",
                    format_duration(waited), names(*table, pids), next_offset[pids[0]],
                    client->cached_watermarks(pids[0]).second, pids.size());
  }
  watch_starvation(self);
}

void consumer_state::serve_rebalances(pointer self) {
  for (auto& r : client->take_rebalances()) {
    // (Counted when partitions change hands: a cooperative round also
    // reports empty assignments.)
    if (!r.pids.empty())
      ++stats.rebalances;
    // A commit met REBALANCE_IN_PROGRESS: the round ends with an assignment.
    if (r.assigned)
      commits_held = false;
    for (auto& [topic, partition] : r.unknown)
      logger()->error("consumer: the group assigned {}[{}], which the topic did not have "
                      "at start-up: castor does not read it until it restarts",
                      topic, partition);
    if (r.assigned)
      on_assigned(self, r.pids);
    else
      on_revoked(self, r.pids, r.lost);
  }
}

void consumer_state::on_assigned(pointer self, const std::vector<uint32_t>& pids) {
  for (auto pid : pids)
    if (pid < at_end.size()) {
      at_end[pid] = false;
      read_latest[pid] = timestamp::min();
      heard[pid] = false;
    }
  // Where each partition starts: the group's committed offset, else the
  // source's start policy.
  auto timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.startup_timeout);
  auto queries = client->queries(timeout, config.cancel);
  auto now = wall_clock_now();
  std::vector<partition_assignment> assigned;
  std::vector<std::pair<uint32_t, int64_t>> starts;
  std::string said;
  for (auto pid : pids) {
    auto& e = table->partitions[pid];
    auto t = std::find_if(config.topics.begin(), config.topics.end(),
                          [&](auto& x) { return x.name == e.topic; });
    auto policy = t->start.what == start_policy::kind::committed
                      ? t->start
                      : start_policy::committed(t->start);
    auto start =
        resolve_start(policy, {e.topic, e.partition}, now, *queries, client->reset());
    if (!start) {
      // Not reading a partition the group gave this instance would stall
      // it for everyone: stop, naming it.
      auto err = to_error(start.error());
      logger()->error("consumer: cannot start {}[{}], assigned by the group: {}", e.topic,
                      e.partition, render(err));
      self->quit(err);
      return;
    }
    note_start_reset(pid, {e.topic, e.partition}, *start);
    owned[pid] = true;
    paused[pid] = false;
    next_offset[pid] = start->start_offset;
    committed[pid] = start->start_offset;
    starts.emplace_back(pid, start->start_offset);
    said +=
        fmt::format("{}{}[{}] at offset {} of [{}, end {}) ({})",
                    said.empty() ? "" : ", ", e.topic, e.partition, start->start_offset,
                    start->start_offset, start->end_offset, start->how);
    assigned.push_back(
        {pid, start->start_offset, start->end_offset, std::move(start->how)});
  }
  if (!pids.empty())
    logger()->info("consumer: the group assigned {} partition(s): {}", pids.size(), said);
  else if (!assigned_once)
    logger()->info("consumer: the group assigned no partition to this instance (more "
                   "instances than partitions?): it waits for a rebalance");
  else
    logger()->debug("consumer: a rebalance assigned no new partition");
  assigned_once = true;
  // The orchestrator learns of them before any of their messages.
  self->send(orchestrator, assign_atom::value, std::move(assigned));
  if (auto err = client->add(starts)) {
    logger()->error("consumer: stops: {}", render(to_error(err)));
    self->quit(to_error(err));
  }
}

void consumer_state::on_revoked(pointer self, const std::vector<uint32_t>& pids,
                                bool lost) {
  // Not read from now on; the orchestrator drops what it holds of them.
  for (auto pid : pids) {
    owned[pid] = false;
    paused[pid] = false;
    revoking[pid] = !lost;
  }
  auto what = names(*table, pids);
  if (lost) {
    // (A hand-over of some of them under way ends here, uncommitted:
    // `revoking` is cleared above, so finish_revocation passes them by.)
    // Another instance may own them already: nothing of them is committed.
    logger()->warn("consumer: the group's assignment of {} was lost (session timeout?): "
                   "what is held of them is dropped and nothing committed",
                   what);
    self->request(orchestrator, caf::infinite, revoke_atom::value, pids)
        .then([](revocation&) {},
              [self](caf::error& err) { self->quit(std::move(err)); });
    if (auto err = client->remove(pids))
      logger()->warn("consumer: {}", render(to_error(err)));
    return;
  }
  logger()->info("consumer: the group revokes {}: finishing what was released of them",
                 what);
  // Drop what is held; let what was released run; commit what was
  // delivered; then hand the partitions over.
  self->request(orchestrator, config.revoke_timeout, revoke_atom::value, pids)
      .then(
          [self, pids](revocation& r) {
            auto& st = self->state;
            if (!st.commits || r.positions.empty()) {
              st.finish_revocation(pids, r.dropped, "nothing to commit");
              return;
            }
            self->request(st.producer, st.config.revoke_timeout, commit_atom::value,
                          r.positions)
                .then(
                    [self, pids, dropped = r.dropped](std::vector<int64_t>& positions) {
                      auto& st = self->state;
                      auto id = st.next_handover++;
                      st.handovers[id] = {pids, dropped, std::move(positions), 0};
                      st.commit_handover(self, id);
                    },
                    [self, pids, dropped = r.dropped](caf::error& err) {
                      self->state.finish_revocation(
                          pids, dropped,
                          "not all was delivered in time (" + render(err) +
                              "): nothing more committed; their next owner repeats it");
                    });
          },
          [self, pids](caf::error& err) {
            // What was released of them did not run in time (a sink that
            // does not take records): hand them over without committing it.
            self->state.finish_revocation(
                pids, 0,
                "what was released of them did not run in time (" + render(err) +
                    "): nothing more committed; their next owner repeats it");
          });
}

void consumer_state::commit_handover(pointer self, uint64_t id) {
  auto i = handovers.find(id);
  if (i == handovers.end())
    return;
  commit(i->second.positions, [self, id](caf::error err, bool rebalancing) {
    auto& st = self->state;
    auto j = st.handovers.find(id);
    if (j == st.handovers.end())
      return;
    auto& h = j->second;
    // The group may still be syncing its other members: again shortly, a
    // few times. Not longer: if another member began a new round (Kafka
    // accepts commits then; librdkafka's mock cluster does not), that
    // round waits for this member, which rejoins only once it has let go.
    if (err && rebalancing && ++h.attempts <= 3) {
      self->delayed_send(self, std::chrono::milliseconds{100}, revoke_atom::value, id);
      return;
    }
    st.finish_revocation(h.pids, h.dropped,
                         err ? "the commit failed (" + render(err) +
                                   "): their next owner repeats what was delivered "
                                   "since the last commit"
                             : "committed what was delivered");
    st.handovers.erase(j);
  });
}

void consumer_state::finish_revocation(const std::vector<uint32_t>& all, uint64_t dropped,
                                       const std::string& outcome) {
  // Only what is still being handed over (a lost assignment in between let
  // them go already, and the group may have given them back since).
  std::vector<uint32_t> pids;
  for (auto pid : all)
    if (revoking[pid])
      pids.push_back(pid);
  if (pids.empty())
    return;
  for (auto pid : pids)
    revoking[pid] = false;
  logger()->info("consumer: hands over {}: {} held message(s) dropped; {}",
                 names(*table, pids), dropped, outcome);
  if (auto err = client->remove(pids))
    logger()->warn("consumer: {}", render(to_error(err)));
}

void consumer_state::note_start_reset(uint32_t pid, const topic_partition& tp,
                                      const partition_start& start) {
  if (start.out_of_range.empty())
    return;
  logger()->error("consumer: {}: {}", to_string(tp), start.out_of_range);
  ++stats.offset_resets;
  stats.skipped_offsets += static_cast<uint64_t>(start.skipped);
  skips.emplace_back(pid, start.skipped);
}

void consumer_state::note_gap(uint32_t pid, int64_t expected, int64_t got) {
  auto& e = table->partitions[pid];
  auto [low, high] = client->cached_watermarks(pid);
  (void)high;
  if (got > expected && low > expected) {
    auto skipped = got - expected;
    auto still_held = got > low
                          ? fmt::format(", {} of them still on the broker", got - low)
                          : std::string{};
    logger()->error("consumer: {}[{}]: offsets [{}, {}) were removed from the broker "
                    "(retention) before castor read them; librdkafka reset the position "
                    "(auto.offset.reset = {}) and castor goes on at offset {}: {} "
                    "offset(s) skipped{}",
                    e.topic, e.partition, expected, low, to_string(client->reset()), got,
                    skipped, still_held);
    ++stats.offset_resets;
    stats.skipped_offsets += static_cast<uint64_t>(skipped);
    skips.emplace_back(pid, skipped);
  } else if (got < expected) {
    logger()->warn("consumer: {}[{}]: the position went back from offset {} to {} (the "
                   "topic was truncated or recreated?): castor reads these offsets again",
                   e.topic, e.partition, expected, got);
    ++stats.offset_resets;
  }
  // A gap within what the broker holds is compaction or transaction markers.
}

void consumer_state::apply(bool pause, const std::vector<uint32_t>& pids) {
  for (auto pid : pids)
    if (pid < paused.size() && (owned[pid] || !pause))
      paused[pid] = pause;
}

consumer_actor::behavior_type consumer(consumer_state::pointer self,
                                       consumer_config config,
                                       orchestrator_actor orchestrator,
                                       producer_actor producer) {
  self->state.config = std::move(config);
  self->state.orchestrator = std::move(orchestrator);
  self->state.producer = std::move(producer);
  if (auto err = self->state.start(self)) {
    if (code_of(err) == ec::stopped)
      logger()->info("consumer: start-up given up: the pipeline stops");
    else
      logger()->error("consumer: cannot start: {}", render(err));
    self->quit(std::move(err));
  } else {
    self->state.read_and_send(self);
  }
  return {
      [self](wake_atom) { self->state.read_and_send(self); },
      [self](wake_atom, uint64_t reads_then) {
        self->state.check_starved(self, reads_then);
      },
      [self](pause_atom, const std::vector<uint32_t>& pids) {
        self->state.apply(true, pids);
      },
      [self](resume_atom, const std::vector<uint32_t>& pids) {
        self->state.apply(false, pids);
        // Resumed partitions may have data that arrived while paused.
        self->state.read_and_send(self);
      },
      [self](commit_atom) {
        auto& st = self->state;
        if (!st.commits)
          return;
        self->delayed_send(self, st.config.commit_interval, commit_atom::value);
        self->request(st.producer, std::chrono::seconds{10}, commit_atom::value)
            .then(
                [self](std::vector<int64_t>& positions) {
                  if (!self->state.periodic_commits_wait())
                    self->state.commit(positions, nullptr);
                },
                [](caf::error& err) {
                  logger()->warn("consumer: no committable offsets: {}", render(err));
                });
      },
      [self](commit_atom, caf::timespan timeout) -> caf::result<ack_atom> {
        auto& st = self->state;
        if (!st.commits)
          return ack_atom::value;
        auto promise = self->make_response_promise<ack_atom>();
        self->request(st.producer, timeout, commit_atom::value)
            .then(
                [self, promise](std::vector<int64_t>& positions) mutable {
                  self->state.commit(positions, [promise](caf::error err, bool) mutable {
                    if (err)
                      promise.deliver(std::move(err));
                    else
                      promise.deliver(ack_atom::value);
                  });
                },
                [promise](caf::error& err) mutable { promise.deliver(err); });
        return promise;
      },
      [self](drain_atom) {
        self->state.stopped_reading = true;
        return ack_atom::value;
      },
      [self](revoke_atom, uint64_t handover) {
        self->state.commit_handover(self, handover);
      },
      [self](tick_atom) {
        auto& st = self->state;
        self->delayed_send(self, st.config.group_poll_interval, tick_atom::value);
        // Rebalances (and the group's poll deadline) are served even while a
        // batch is in flight and the orchestrator holds its answer: what
        // they send the orchestrator comes after that batch.
        if (st.client && st.table && !st.stopped_reading && st.in_flight) {
          kafka::read_errors errors;
          st.client->read_cluster_errors(errors);
          if (errors.fatal) {
            auto err = to_error(errors.fatal);
            logger()->error("consumer: stops: {}", render(err));
            self->quit(err);
            return;
          }
          st.pending_broker_errors += errors.transient;
          st.serve_rebalances(self);
        }
        st.read_and_send(self);
      },
      [self](stats_atom) {
        auto& st = self->state;
        auto stats = st.stats;
        if (!st.client || !st.table)
          return stats;
        // The high watermarks librdkafka last saw in fetch responses (no
        // broker round trip).
        for (uint32_t pid = 0; pid < st.table->partitions.size(); ++pid) {
          auto& e = st.table->partitions[pid];
          partition_progress p;
          p.topic = e.topic;
          p.partition = e.partition;
          p.high_watermark = st.client->cached_watermarks(pid).second;
          p.assigned = st.owned[pid];
          stats.assigned_partitions += st.owned[pid] ? 1 : 0;
          stats.partitions.push_back(std::move(p));
        }
        for (auto [pid, skipped] : st.skips)
          stats.partitions[pid].skipped += skipped;
        return stats;
      },
  };
}

} // namespace castor
