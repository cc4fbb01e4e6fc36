// SPDX-License-Identifier: Apache-2.0
#include "castor/consumer.hpp"

#include "castor/logger.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <unistd.h>

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
  return {};
}

void detail::wakeup::on_event(rd_kafka_t*, void* opaque) {
  // Runs on a librdkafka thread: one message, no librdkafka calls.
  auto* self = static_cast<wakeup*>(opaque);
  if (self->pending.exchange(true))
    return;
  if (auto target = caf::actor_cast<caf::actor>(self->target))
    caf::anon_send(target, wake_atom::value);
}

namespace {

bool is_fatal(rd_kafka_resp_err_t err) {
  switch (err) {
  case RD_KAFKA_RESP_ERR__FATAL:
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR__AUTHENTICATION:
  case RD_KAFKA_RESP_ERR__SSL:
    return true;
  default:
    return false;
  }
}

std::string private_group_id() {
  std::random_device rd;
  return fmt::format("castor-private-{}-{:08x}", getpid(), rd());
}

} // namespace

consumer_state::~consumer_state() {
  for (auto& p : partitions)
    if (p.queue)
      rd_kafka_queue_cb_event_enable(p.queue.get(), nullptr, nullptr);
  partitions.clear();
  if (commit_queue) {
    rd_kafka_queue_cb_event_enable(commit_queue.get(), nullptr, nullptr);
    commit_queue.reset();
  }
  if (queue) {
    rd_kafka_queue_cb_event_enable(queue.get(), nullptr, nullptr);
    queue.reset();
  }
  if (client)
    close_client();
}

void consumer_state::close_client() {
  // librdkafka's own close waits for requests in flight (a commit to a
  // broker that is gone waits for socket.timeout.ms): close through a queue
  // for at most close_timeout, then destroy without a second close.
  auto deadline = std::chrono::steady_clock::now() + config.close_timeout;
  kafka::queue_ptr closing{rd_kafka_queue_new(client.get())};
  if (auto* error = rd_kafka_consumer_close_queue(client.get(), closing.get())) {
    logger()->debug("consumer: close: {}", rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else {
    while (!rd_kafka_consumer_closed(client.get()) &&
           std::chrono::steady_clock::now() < deadline)
      if (auto* ev = rd_kafka_queue_poll(closing.get(), 50))
        rd_kafka_event_destroy(ev);
  }
  closing.reset();
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  left = std::max(left, std::chrono::milliseconds{100});
  if (!kafka::destroy_within(std::move(client), left,
                             RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
    logger()->warn("consumer: librdkafka still closes its client (requests to a broker "
                   "that does not answer); castor goes on without it");
}

caf::error consumer_state::start(consumer_actor::stateful_pointer<consumer_state> self) {
  if (auto err = config.validate())
    return err;
  auto props = config.properties;
  // A position out of range (retention removed it, or a topic was
  // truncated): librdkafka's default is to jump to the end, skipping what
  // the broker still holds. castor goes back to the oldest offset instead,
  // unless told otherwise, and reports what was skipped either way.
  if (auto i = props.find("auto.offset.reset"); i != props.end()) {
    auto parsed = parse_offset_reset(i->second);
    if (!parsed)
      return parsed.error();
    reset = *parsed;
  } else {
    props["auto.offset.reset"] = "earliest";
  }
  props["enable.partition.eof"] = "true";
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  if (!props.contains("group.id"))
    props["group.id"] = private_group_id();
  // Each partition prefetches into its own queue, up to these limits.
  // librdkafka (before 2.2) stops fetching a partition whose queue is above
  // them and looks again only when its broker thread wakes, up to a second
  // later: a queue castor empties faster than that leaves the replay idle.
  // 20000 messages cost 3x the throughput of 50000 (measured, bench/);
  // librdkafka's own default of 100000 is faster still but makes a paused
  // partition keep twice the memory.
  if (!props.contains("queued.min.messages"))
    props["queued.min.messages"] = "50000";
  if (!props.contains("queued.max.messages.kbytes"))
    props["queued.max.messages.kbytes"] = "8192";
  auto conf = kafka::make_conf(props, "consumer");
  if (!conf)
    return conf.error();
  // The commit callback finds the state through the client's opaque.
  rd_kafka_conf_set_opaque(conf->get(), this);
  auto made = kafka::make_client(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!made)
    return made.error();
  client = std::move(*made);
  rd_kafka_poll_set_consumer(client.get());

  // Resolve where every partition starts, in (topic, partition) order.
  auto timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.startup_timeout);
  kafka::broker_queries queries{client.get(), config.properties, timeout, config.cancel};
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
    auto count = kafka::partition_count(client.get(), t.name, timeout, config.cancel);
    if (!count)
      return count.error();
    first_pid[t.name] = static_cast<uint32_t>(result->partitions.size());
    for (int32_t p = 0; p < *count; ++p) {
      if (cancelled())
        return stopped();
      auto start = resolve_start(t.start, {t.name, p}, now, queries, reset);
      if (!start)
        return start.error();
      if (!start->out_of_range.empty()) {
        logger()->error("consumer: {}[{}]: {}", t.name, p, start->out_of_range);
        ++stats.offset_resets;
        stats.skipped_offsets += static_cast<uint64_t>(start->skipped);
        skips.emplace_back(static_cast<uint32_t>(result->partitions.size()),
                           start->skipped);
      }
      result->partitions.push_back(partition_entry{t.name, p, t.source,
                                                   start->start_offset, start->end_offset,
                                                   std::move(start->how)});
    }
  }
  for (auto& [name, what] : config.output_topics) {
    if (cancelled())
      return stopped();
    auto count = kafka::partition_count(client.get(), name, timeout, config.cancel);
    if (!count && code_of(count.error()) == ec::unknown_topic)
      return make_error(ec::unknown_topic,
                        fmt::format("{} topic '{}' does not exist", what, name));
    if (!count)
      return count.error();
  }
  table = result;
  for (auto& e : table->partitions) {
    committed.push_back(e.start_offset);
    next_offset.push_back(e.start_offset);
  }

  // Each partition keeps its own queue (set up before the assignment, which
  // would otherwise forward them all into the consumer queue).
  auto event_driven = config.event_driven;
  if (event_driven)
    wake->target = caf::actor_cast<caf::weak_actor_ptr>(self);
  for (auto& e : table->partitions) {
    kafka::queue_ptr q{
        rd_kafka_queue_get_partition(client.get(), e.topic.c_str(), e.partition)};
    if (!q)
      return make_error(ec::kafka_error,
                        fmt::format("no queue for {}[{}]", e.topic, e.partition));
    rd_kafka_queue_forward(q.get(), nullptr);
    if (event_driven)
      rd_kafka_queue_cb_event_enable(q.get(), &detail::wakeup::on_event, wake.get());
    partitions.push_back(partition_queue{std::move(q), false});
  }
  kafka::partition_list_ptr list{
      rd_kafka_topic_partition_list_new(static_cast<int>(table->partitions.size()))};
  for (auto& e : table->partitions) {
    auto* elem =
        rd_kafka_topic_partition_list_add(list.get(), e.topic.c_str(), e.partition);
    elem->offset = e.start_offset;
    logger()->info("consumer: starts {}[{}] at offset {} of [{}, end {}) ({})", e.topic,
                   e.partition, e.start_offset, e.start_offset, e.end_offset, e.how);
  }
  if (auto err = rd_kafka_assign(client.get(), list.get()))
    return kafka::to_error(err, "assigning the source partitions");
  queue.reset(rd_kafka_queue_get_consumer(client.get()));
  buffer.resize(config.batch_size);
  allowance = config.batch_size;
  if (event_driven)
    rd_kafka_queue_cb_event_enable(queue.get(), &detail::wakeup::on_event, wake.get());
  if (producer && config.commits()) {
    commit_queue.reset(rd_kafka_queue_new(client.get()));
    if (event_driven)
      rd_kafka_queue_cb_event_enable(commit_queue.get(), &detail::wakeup::on_event,
                                     wake.get());
    auto& group = config.properties.at("group.id");
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

void consumer_state::commit(const std::vector<int64_t>& positions,
                            std::optional<caf::typed_response_promise<ack_atom>> done) {
  if (!commit_queue) {
    if (done)
      done->deliver(ack_atom::value);
    return;
  }
  // One commit in flight at a time: librdkafka may retry a commit that met
  // an outage after a newer one, and the older offsets would win. A periodic
  // commit that finds one in flight is skipped (the next one carries its
  // offsets); the final commit waits for it.
  if (committing) {
    if (done)
      deferred_final = deferred_commit{positions, std::move(*done)};
    return;
  }
  // The final commit sends every position it has, even those committed
  // already, so that it is the last word whatever happened before.
  bool all = done.has_value();
  kafka::partition_list_ptr list{rd_kafka_topic_partition_list_new(1)};
  auto n = std::min(positions.size(), committed.size());
  for (size_t pid = 0; pid < n; ++pid) {
    if (positions[pid] < 0 || (!all && positions[pid] <= committed[pid]))
      continue;
    auto& e = table->partitions[pid];
    auto* elem =
        rd_kafka_topic_partition_list_add(list.get(), e.topic.c_str(), e.partition);
    elem->offset = positions[pid];
  }
  if (list->cnt == 0) {
    if (done)
      done->deliver(ack_atom::value);
    return;
  }
  logger()->debug("consumer: commits {} partition(s)", list->cnt);
  committing = true;
  commit_done = std::move(done);
  auto err = rd_kafka_commit_queue(client.get(), list.get(), commit_queue.get(),
                                   &consumer_state::on_commit_cb, nullptr);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    on_commit(err, list.get());
}

void consumer_state::on_commit_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t* offsets, void*) {
  static_cast<consumer_state*>(rd_kafka_opaque(rk))->on_commit(err, offsets);
}

void consumer_state::serve_commits() {
  if (!commit_queue)
    return;
  while (auto* ev = rd_kafka_queue_poll(commit_queue.get(), 0)) {
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT)
      on_commit(rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
    rd_kafka_event_destroy(ev);
  }
}

void consumer_state::on_commit(rd_kafka_resp_err_t err,
                               const rd_kafka_topic_partition_list_t* offsets) {
  committing = false;
  auto done = std::exchange(commit_done, std::nullopt);
  caf::error failure;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    failure = kafka::to_error(err, "committing offsets");
  for (int k = 0; offsets != nullptr && k < offsets->cnt; ++k) {
    auto& elem = offsets->elems[k];
    auto first = first_pid.find(elem.topic);
    if (first == first_pid.end())
      continue;
    auto pid = first->second + static_cast<uint32_t>(elem.partition);
    if (elem.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (!failure)
        failure = kafka::to_error(elem.err,
                                  fmt::format("committing offset {} of {}[{}]",
                                              elem.offset, elem.topic, elem.partition));
      continue;
    }
    if (!failure && pid < committed.size())
      committed[pid] = std::max(committed[pid], elem.offset);
  }
  if (failure) {
    // Nothing is lost: the next commit sends these offsets again.
    logger()->warn("consumer: commit failed: {}; retrying with the next commit",
                   render(failure));
    if (done)
      done->deliver(failure);
    run_deferred();
    return;
  }
  ++stats.commits;
  logger()->debug("consumer: committed {} partition(s)", offsets ? offsets->cnt : 0);
  if (done)
    done->deliver(ack_atom::value);
  run_deferred();
}

void consumer_state::run_deferred() {
  if (!deferred_final || committing)
    return;
  auto final = std::move(*deferred_final);
  deferred_final.reset();
  commit(final.positions, std::move(final.done));
}

void consumer_state::drain(consumer_actor::stateful_pointer<consumer_state> self) {
  wake->pending = false;
  serve_commits();
  if (in_flight || !queue || stopped_reading)
    return;
  auto batch = std::make_shared<consumed_batch>();
  caf::error fatal;
  // Error events never join the data: transient ones are logged (librdkafka
  // retries), fatal ones stop the consumer.
  auto classify = [&](rd_kafka_message_t* m) {
    auto where = m->rkt != nullptr
                     ? fmt::format("{}[{}]", rd_kafka_topic_name(m->rkt), m->partition)
                     : std::string{"the cluster"};
    auto text =
        fmt::format("consumer error on {}: {}", where, rd_kafka_message_errstr(m));
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
      // auto.offset.reset = error: the position is out of range.
      if (!fatal)
        fatal =
            make_error(ec::offset_out_of_range,
                       fmt::format("{}: offset {} is out of range on the broker and "
                                   "auto.offset.reset is error ({}); with earliest, "
                                   "castor would go on from the oldest offset it holds",
                                   where, m->offset, rd_kafka_message_errstr(m)));
    } else if (is_fatal(m->err)) {
      if (!fatal)
        fatal = kafka::to_error(m->err, text);
    } else {
      logger()->warn("consumer: {} ({}); retrying", text, rd_kafka_err2name(m->err));
      ++batch->broker_errors;
    }
  };
  // Errors that concern no partition arrive on the consumer queue.
  auto n = rd_kafka_consume_batch_queue(queue.get(), 0, buffer.data(), buffer.size());
  for (ssize_t i = 0; i < n; ++i) {
    auto* m = buffer[static_cast<size_t>(i)];
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
        m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
      classify(m);
    rd_kafka_message_destroy(m);
  }
  // Then the partitions that are not paused, round-robin, within the credit.
  size_t budget = std::min(allowance, buffer.size());
  batch->messages.reserve(budget);
  auto count = partitions.size();
  for (size_t k = 0; k < count && budget > 0 && !fatal; ++k) {
    auto pid = static_cast<uint32_t>((next_partition + k) % count);
    auto& part = partitions[pid];
    if (part.paused)
      continue;
    auto got = rd_kafka_consume_batch_queue(part.queue.get(), 0, buffer.data(), budget);
    for (ssize_t i = 0; i < got; ++i) {
      auto* m = buffer[static_cast<size_t>(i)];
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && !fatal) {
        auto& expected = next_offset[pid];
        if (m->offset != expected)
          note_gap(pid, expected, m->offset);
        expected = m->offset + 1;
        batch->messages.emplace_back(m, pid); // takes ownership
        --budget;
        continue;
      }
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        batch->end_of_partition.push_back(pid);
      else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        classify(m);
      rd_kafka_message_destroy(m);
    }
  }
  if (count > 0)
    next_partition = (next_partition + 1) % count;
  if (fatal) {
    logger()->error("consumer: stops: {}", render(fatal));
    self->quit(fatal);
    return;
  }
  if (batch->messages.empty() && batch->end_of_partition.empty() &&
      batch->broker_errors == 0)
    return; // the queues' callbacks wake the consumer when data arrives
  in_flight = true;
  self->request(orchestrator, caf::infinite, std::move(batch))
      .then(
          [self](uint32_t allowance) {
            self->state.allowance = std::max<uint32_t>(allowance, 1);
            self->state.in_flight = false;
            self->state.drain(self);
          },
          [self](caf::error& err) { self->quit(std::move(err)); });
}

void consumer_state::note_gap(uint32_t pid, int64_t expected, int64_t got) {
  auto& e = table->partitions[pid];
  int64_t low = -1;
  int64_t high = -1;
  // The offsets librdkafka saw in the last fetch response (no round trip).
  rd_kafka_get_watermark_offsets(client.get(), e.topic.c_str(), e.partition, &low, &high);
  if (got > expected && low > expected) {
    auto skipped = got - expected;
    auto still_held = got > low
                          ? fmt::format(", {} of them still on the broker", got - low)
                          : std::string{};
    logger()->error("consumer: {}[{}]: offsets [{}, {}) were removed from the broker "
                    "(retention) before castor read them; librdkafka reset the position "
                    "(auto.offset.reset = {}) and castor goes on at offset {}: {} "
                    "offset(s) skipped{}",
                    e.topic, e.partition, expected, low, to_string(reset), got, skipped,
                    still_held);
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
    if (pid < partitions.size())
      partitions[pid].paused = pause;
}

consumer_actor::behavior_type
consumer(consumer_actor::stateful_pointer<consumer_state> self, consumer_config config,
         orchestrator_actor orchestrator, producer_actor producer) {
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
    self->state.drain(self);
  }
  return {
      [self](wake_atom) { self->state.drain(self); },
      [self](pause_atom, const std::vector<uint32_t>& pids) {
        self->state.apply(true, pids);
      },
      [self](resume_atom, const std::vector<uint32_t>& pids) {
        self->state.apply(false, pids);
        // Resumed partitions may have data that arrived while paused.
        self->state.drain(self);
      },
      [self](commit_atom) {
        auto& st = self->state;
        if (!st.commit_queue)
          return;
        self->delayed_send(self, st.config.commit_interval, commit_atom::value);
        self->request(st.producer, std::chrono::seconds{10}, commit_atom::value)
            .then(
                [self](std::vector<int64_t>& positions) {
                  self->state.commit(positions, std::nullopt);
                },
                [](caf::error& err) {
                  logger()->warn("consumer: no committable offsets: {}", render(err));
                });
      },
      [self](commit_atom, caf::timespan timeout) -> caf::result<ack_atom> {
        auto& st = self->state;
        if (!st.commit_queue)
          return ack_atom::value;
        auto promise = self->make_response_promise<ack_atom>();
        self->request(st.producer, timeout, commit_atom::value)
            .then(
                [self, promise](std::vector<int64_t>& positions) mutable {
                  self->state.commit(positions, promise);
                },
                [promise](caf::error& err) mutable { promise.deliver(err); });
        return promise;
      },
      [self](drain_atom) {
        self->state.stopped_reading = true;
        return ack_atom::value;
      },
      [self](stats_atom) {
        auto& st = self->state;
        auto stats = st.stats;
        if (!st.client || !st.table)
          return stats;
        // The high watermarks librdkafka last saw in fetch responses (no
        // broker round trip).
        for (auto& e : st.table->partitions) {
          int64_t low = -1;
          int64_t high = -1;
          rd_kafka_get_watermark_offsets(st.client.get(), e.topic.c_str(), e.partition,
                                         &low, &high);
          partition_progress p;
          p.topic = e.topic;
          p.partition = e.partition;
          p.high_watermark = high;
          stats.partitions.push_back(std::move(p));
        }
        for (auto [pid, skipped] : st.skips) {
          auto& e = st.table->partitions[pid];
          for (auto& p : stats.partitions)
            if (p.topic == e.topic && p.partition == e.partition)
              p.skipped += skipped;
        }
        return stats;
      },
  };
}

} // namespace castor
