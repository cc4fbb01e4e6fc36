// SPDX-License-Identifier: Apache-2.0
#include "castor/producer.hpp"

#include "castor/logger.hpp"

#include <caf/actor_cast.hpp>
#include <fmt/format.h>

namespace castor {

caf::error producer_config::validate() const {
  if (!properties.contains("bootstrap.servers"))
    return make_error(
        ec::invalid_config,
        "the producer needs bootstrap.servers (the Kafka cluster's address)");
  return {};
}

producer_state::~producer_state() {
  if (main_queue) {
    rd_kafka_queue_cb_event_enable(main_queue.get(), nullptr, nullptr);
    main_queue.reset();
  }
  known_topics.clear();
  if (client) {
    // Whatever is still queued was reported by the flush; do not block here.
    rd_kafka_purge(client.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    if (!kafka::destroy_within(std::move(client), std::chrono::seconds{2}))
      logger()->warn("producer: librdkafka still closes its client (requests to a "
                     "broker that does not answer); castor goes on without it");
  }
}

topic_counters& producer_state::counters_for(std::string_view topic) {
  auto& topics = stats.topics;
  if (last_topic < topics.size() && topics[last_topic].topic == topic)
    return topics[last_topic];
  auto& found = topic_of(stats, topic);
  last_topic = static_cast<size_t>(&found - topics.data());
  return found;
}

void producer_state::on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg,
                                 void* opaque) {
  auto* st = static_cast<producer_state*>(opaque);
  auto batch = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(msg->_private));
  auto& topic = st->counters_for(rd_kafka_topic_name(msg->rkt));
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++st->stats.delivered;
    ++topic.delivered;
    st->tracker.delivered(batch, true);
    return;
  }
  ++st->stats.delivery_errors;
  ++topic.delivery_errors;
  // A commit never passes a record that was not delivered.
  st->tracker.delivered(batch, false);
  if (msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
      msg->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
    return;
  if (st->failure)
    return; // the first failure was logged and stops the pipeline
  auto text = fmt::format("delivery to {}[{}] failed: {}", rd_kafka_topic_name(msg->rkt),
                          msg->partition, rd_kafka_err2str(msg->err));
  logger()->error("producer: {}", text);
  st->failure = make_error(ec::produce_failed, std::move(text));
}

caf::error producer_state::start(producer_actor::stateful_pointer<producer_state> self) {
  if (auto err = config.validate())
    return err;
  auto props = config.properties;
  // Retries must not reorder or duplicate: idempotence, unless the user
  // chose the delivery settings themselves.
  if (!props.contains("enable.idempotence") && !props.contains("acks") &&
      !props.contains("request.required.acks") &&
      !props.contains("max.in.flight.requests.per.connection") &&
      !props.contains("max.in.flight"))
    props["enable.idempotence"] = "true";
  // A missing sink topic is an error naming it (checked at start-up with
  // the sources), not a topic the broker creates on the first record.
  if (!props.contains("allow.auto.create.topics"))
    props["allow.auto.create.topics"] = "false";
  auto conf = kafka::make_conf(props, "producer");
  if (!conf)
    return conf.error();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &producer_state::on_delivery);
  rd_kafka_conf_set_opaque(conf->get(), this);
  auto made = kafka::make_client(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!made)
    return made.error();
  client = std::move(*made);
  for (auto& t : config.topics)
    if (auto* rkt = rd_kafka_topic_new(client.get(), t.c_str(), nullptr))
      known_topics.emplace_back(rkt);
  main_queue.reset(rd_kafka_queue_get_main(client.get()));
  if (config.event_driven) {
    wake->target = caf::actor_cast<caf::weak_actor_ptr>(self);
    rd_kafka_queue_cb_event_enable(main_queue.get(), &detail::wakeup::on_event,
                                   wake.get());
  }
  return {};
}

void producer_state::poll() {
  wake->pending = false;
  if (client)
    rd_kafka_poll(client.get(), 0);
}

void producer_state::produce_pending(
    producer_actor::stateful_pointer<producer_state> self) {
  while (!pending.empty()) {
    auto& front = pending.front();
    auto& records = front.batch->records;
    while (front.next < records.size()) {
      auto& r = records[front.next];
      rd_kafka_headers_t* headers = nullptr;
      if (!r.headers.empty()) {
        headers = rd_kafka_headers_new(r.headers.size());
        for (auto& h : r.headers)
          rd_kafka_header_add(headers, h.name.data(), static_cast<ssize_t>(h.name.size()),
                              h.value ? h.value->data() : nullptr,
                              h.value ? static_cast<ssize_t>(h.value->size()) : 0);
      }
      // librdkafka's macros cast their arguments: compute them first.
      int32_t partition = r.partition ? *r.partition : RD_KAFKA_PARTITION_UA;
      const void* key = r.key ? r.key->data() : nullptr;
      size_t key_size = r.key ? r.key->size() : 0;
      void* value = r.value ? const_cast<char*>(r.value->data()) : nullptr;
      size_t value_size = r.value ? r.value->size() : 0;
      int64_t time_ms = r.time ? to_millis(*r.time) : 0;
      // The delivery report names the batch, for the commit tracker.
      void* batch_id = reinterpret_cast<void*>(static_cast<uintptr_t>(front.id));
      auto err = rd_kafka_producev(
          client.get(), RD_KAFKA_V_TOPIC(r.topic.c_str()),
          RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(key, key_size), RD_KAFKA_V_VALUE(value, value_size),
          RD_KAFKA_V_TIMESTAMP(time_ms), RD_KAFKA_V_HEADERS(headers),
          RD_KAFKA_V_OPAQUE(batch_id), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr)
        rd_kafka_headers_destroy(headers);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        // Backpressure: answer nobody until there is room again.
        poll();
        if (!retry_armed) {
          retry_armed = true;
          self->delayed_send(self, config.retry_interval, retry_atom::value);
        }
        return;
      }
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        auto text = fmt::format("cannot produce a record ({} bytes of key, {} of value) "
                                "to {}: {}",
                                key_size, value_size, r.topic, rd_kafka_err2str(err));
        logger()->error("producer: {}", text);
        auto error = make_error(ec::produce_failed, std::move(text));
        front.promise.deliver(error);
        self->quit(error);
        return;
      }
      ++stats.produced;
      ++counters_for(r.topic).produced;
      ++front.next;
    }
    front.promise.deliver(ack_atom::value);
    pending.pop_front();
  }
}

void producer_state::check_flushes(
    producer_actor::stateful_pointer<producer_state> self) {
  if (flushes.empty())
    return;
  auto queued = client ? static_cast<uint64_t>(rd_kafka_outq_len(client.get())) : 0;
  uint64_t unsent = 0;
  for (auto& p : pending)
    unsent += p.batch->records.size() - p.next;
  auto now = self->clock().now();
  std::erase_if(flushes, [&](flush_request& f) {
    if ((queued == 0 && unsent == 0) || now >= f.deadline) {
      f.promise.deliver(queued + unsent);
      return true;
    }
    return false;
  });
  if (!flushes.empty())
    self->delayed_send(self, std::chrono::milliseconds{10}, wake_atom::value);
}

producer_actor::behavior_type
producer(producer_actor::stateful_pointer<producer_state> self, producer_config config) {
  self->state.config = std::move(config);
  if (auto err = self->state.start(self)) {
    logger()->error("producer: cannot start: {}", render(err));
    self->quit(std::move(err));
  }
  auto after_poll = [self] {
    auto& st = self->state;
    if (st.failure) {
      self->quit(st.failure);
      return;
    }
    st.produce_pending(self);
    st.check_flushes(self);
  };
  return {
      [self](record_batch_ptr& batch) -> caf::result<ack_atom> {
        auto& st = self->state;
        auto promise = self->make_response_promise<ack_atom>();
        auto id = st.tracker.open(batch->positions, batch->records.size());
        st.pending.push_back({std::move(batch), 0, id, promise});
        st.produce_pending(self);
        return promise;
      },
      [self, after_poll](wake_atom) {
        self->state.poll();
        after_poll();
      },
      [self, after_poll](retry_atom) {
        self->state.retry_armed = false;
        self->state.poll();
        after_poll();
      },
      [self](flush_atom, caf::timespan timeout) -> caf::result<uint64_t> {
        auto& st = self->state;
        auto promise = self->make_response_promise<uint64_t>();
        st.flushes.push_back({self->clock().now() + timeout, promise});
        st.poll();
        st.check_flushes(self);
        return promise;
      },
      [self](commit_atom) {
        auto& st = self->state;
        st.poll();
        return st.tracker.committable();
      },
      [self](stats_atom) { return self->state.stats; },
  };
}

} // namespace castor
