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
  if (queue) {
    rd_kafka_queue_cb_event_enable(queue.get(), nullptr, nullptr);
    queue.reset();
  }
  if (client) {
    rd_kafka_consumer_close(client.get());
    client.reset();
  }
}

caf::error consumer_state::start(consumer_actor::stateful_pointer<consumer_state> self) {
  if (auto err = config.validate())
    return err;
  auto props = config.properties;
  props["enable.partition.eof"] = "true";
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  if (!props.contains("group.id"))
    props["group.id"] = private_group_id();
  if (!props.contains("queued.min.messages"))
    props["queued.min.messages"] = "1000000";
  auto conf = kafka::make_conf(props, "consumer");
  if (!conf)
    return conf.error();
  auto made = kafka::make_client(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!made)
    return made.error();
  client = std::move(*made);
  rd_kafka_poll_set_consumer(client.get());

  // Resolve where every partition starts, in (topic, partition) order.
  auto timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.startup_timeout);
  kafka::broker_queries queries{client.get(), config.properties, timeout};
  auto topics = config.topics;
  std::sort(topics.begin(), topics.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  auto result = std::make_shared<partition_table>();
  auto now = wall_clock_now();
  for (auto& t : topics) {
    auto count = kafka::partition_count(client.get(), t.name, timeout);
    if (!count)
      return count.error();
    first_pid[t.name] = static_cast<uint32_t>(result->partitions.size());
    for (int32_t p = 0; p < *count; ++p) {
      auto start = resolve_start(t.start, {t.name, p}, now, queries);
      if (!start)
        return start.error();
      result->partitions.push_back(partition_entry{t.name, p, t.source,
                                                   start->start_offset, start->end_offset,
                                                   std::move(start->how)});
    }
  }
  table = result;

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
  if (config.event_driven) {
    wake->target = caf::actor_cast<caf::weak_actor_ptr>(self);
    rd_kafka_queue_cb_event_enable(queue.get(), &detail::wakeup::on_event, wake.get());
  }
  self->send(orchestrator, start_atom::value, table,
             caf::actor_cast<consumer_actor>(self));
  return {};
}

void consumer_state::drain(consumer_actor::stateful_pointer<consumer_state> self) {
  wake->pending = false;
  if (in_flight || !queue)
    return;
  auto n = rd_kafka_consume_batch_queue(queue.get(), 0, buffer.data(),
                                        std::min(allowance, buffer.size()));
  if (n <= 0)
    return;
  auto batch = std::make_shared<consumed_batch>();
  batch->messages.reserve(static_cast<size_t>(n));
  auto pid_of = [this](const rd_kafka_message_t* m) -> std::optional<uint32_t> {
    if (m->rkt == nullptr)
      return std::nullopt;
    for (auto& [rkt, base] : topic_cache)
      if (rkt == m->rkt)
        return base + static_cast<uint32_t>(m->partition);
    auto i = first_pid.find(rd_kafka_topic_name(m->rkt));
    if (i == first_pid.end())
      return std::nullopt;
    topic_cache.emplace_back(m->rkt, i->second);
    return i->second + static_cast<uint32_t>(m->partition);
  };
  caf::error fatal;
  for (ssize_t i = 0; i < n; ++i) {
    auto* m = buffer[static_cast<size_t>(i)];
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && !fatal) {
      if (auto pid = pid_of(m)) {
        batch->messages.emplace_back(m, *pid);
        continue;
      }
    } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (auto pid = pid_of(m))
        batch->end_of_partition.push_back(*pid);
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Error events never join the data.
      auto where = m->rkt != nullptr
                       ? fmt::format("{}[{}]", rd_kafka_topic_name(m->rkt), m->partition)
                       : std::string{"the cluster"};
      auto text =
          fmt::format("consumer error on {}: {}", where, rd_kafka_message_errstr(m));
      if (is_fatal(m->err) && !fatal) {
        fatal = kafka::to_error(m->err, text);
      } else {
        logger()->warn("consumer: {} ({}); retrying", text, rd_kafka_err2name(m->err));
      }
    }
    rd_kafka_message_destroy(m);
  }
  if (fatal) {
    logger()->error("consumer: stops: {}", render(fatal));
    self->quit(fatal);
    return;
  }
  if (batch->messages.empty() && batch->end_of_partition.empty()) {
    // Only transient errors: look again, after the mailbox.
    self->send(self, wake_atom::value);
    return;
  }
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

void consumer_state::apply(bool pause, const std::vector<uint32_t>& pids) {
  if (!client || pids.empty())
    return;
  kafka::partition_list_ptr list{
      rd_kafka_topic_partition_list_new(static_cast<int>(pids.size()))};
  for (auto pid : pids) {
    auto& e = table->partitions.at(pid);
    rd_kafka_topic_partition_list_add(list.get(), e.topic.c_str(), e.partition);
  }
  auto err = pause ? rd_kafka_pause_partitions(client.get(), list.get())
                   : rd_kafka_resume_partitions(client.get(), list.get());
  if (err)
    logger()->warn("consumer: {} failed: {}", pause ? "pause" : "resume",
                   rd_kafka_err2str(err));
}

consumer_actor::behavior_type
consumer(consumer_actor::stateful_pointer<consumer_state> self, consumer_config config,
         orchestrator_actor orchestrator) {
  self->state.config = std::move(config);
  self->state.orchestrator = std::move(orchestrator);
  if (auto err = self->state.start(self)) {
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
  };
}

} // namespace castor
