// SPDX-License-Identifier: Apache-2.0
#include "castor/producer.hpp"

#include "castor/error.hpp"
#include "castor/logger.hpp"

#include <caf/actor_cast.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace castor {

caf::error producer_config::validate() const {
  if (!properties.contains("bootstrap.servers"))
    return make_error(
        ec::invalid_config,
        "the producer needs bootstrap.servers (the Kafka cluster's address)");
  return {};
}

topic_counters& producer_state::counters_for(std::string_view topic) {
  auto& topics = stats.topics;
  if (last_topic < topics.size() && topics[last_topic].topic == topic)
    return topics[last_topic];
  auto& found = topic_of(stats, topic);
  last_topic = static_cast<size_t>(&found - topics.data());
  return found;
}

void producer_state::on_delivery(const kafka::delivery& d) {
  auto& topic = counters_for(d.topic);
  if (!d.error) {
    ++stats.delivered;
    ++topic.delivered;
    tracker.delivered(d.tag, true);
    return;
  }
  ++stats.delivery_errors;
  ++topic.delivery_errors;
  // A commit never passes a record that was not delivered.
  tracker.delivered(d.tag, false);
  if (d.purged || delivery_failure)
    return; // the first failure was logged and stops the pipeline
  logger()->error("producer: {}", d.error.what());
  delivery_failure = to_error(d.error);
}

caf::error producer_state::start(pointer self) {
  if (auto err = config.validate())
    return err;
  std::function<void()> on_event;
  if (config.event_driven) {
    wake->target = caf::actor_cast<caf::weak_actor_ptr>(self);
    on_event = wakeup::callback(wake);
  }
  auto made = kafka::producer_client::make(
      config.properties, config.topics,
      [this](const kafka::delivery& d) { on_delivery(d); }, std::move(on_event));
  if (!made)
    return to_error(made.error());
  client = std::move(*made);
  return {};
}

void producer_state::poll() {
  wake->reset();
  if (client)
    client->poll();
}

void producer_state::produce_pending(pointer self) {
  while (!pending.empty()) {
    auto& front = pending.front();
    auto& records = front.batch->records;
    while (front.next < records.size()) {
      auto& r = records[front.next];
      failure why;
      auto status = client->produce(r, front.id, why);
      if (status == kafka::produce_status::queue_full) {
        // Backpressure: answer nobody until there is room again.
        poll();
        if (!retry_armed) {
          retry_armed = true;
          self->delayed_send(self, config.retry_interval, retry_atom::value);
        }
        return;
      }
      if (status == kafka::produce_status::refused) {
        logger()->error("producer: {}", why.what());
        auto error = to_error(why);
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

void producer_state::check_waits(pointer self) {
  // Revocations' commits: once their partitions' positions are committable
  // (or a failed record blocks every commit: what is committable goes).
  auto& ready = tracker.committable();
  std::erase_if(commit_waits, [&](commit_wait& w) {
    bool done = tracker.blocked() || self->clock().now() >= w.deadline ||
                std::all_of(w.positions.begin(), w.positions.end(), [&](auto& p) {
                  return p.first < ready.size() && ready[p.first] >= p.second;
                });
    if (done)
      w.promise.deliver(ready);
    return done;
  });
  if (flushes.empty()) {
    if (!commit_waits.empty())
      self->delayed_send(self, std::chrono::milliseconds{10}, wake_atom::value);
    return;
  }
  auto queued = client ? client->outstanding() : 0;
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
  if (!flushes.empty() || !commit_waits.empty())
    self->delayed_send(self, std::chrono::milliseconds{10}, wake_atom::value);
}

producer_actor::behavior_type producer(producer_state::pointer self,
                                       producer_config config) {
  self->state.config = std::move(config);
  if (auto err = self->state.start(self)) {
    logger()->error("producer: cannot start: {}", render(err));
    self->quit(std::move(err));
  }
  auto after_poll = [self] {
    auto& st = self->state;
    if (st.delivery_failure) {
      self->quit(st.delivery_failure);
      return;
    }
    st.produce_pending(self);
    st.check_waits(self);
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
        st.check_waits(self);
        return promise;
      },
      [self](commit_atom) {
        auto& st = self->state;
        st.poll();
        return st.tracker.committable();
      },
      [self](commit_atom, std::vector<partition_position>& positions)
          -> caf::result<std::vector<int64_t>> {
        auto& st = self->state;
        auto promise = self->make_response_promise<std::vector<int64_t>>();
        // (The asker's own timeout is shorter; this one only ends the wait.)
        st.commit_waits.push_back({std::move(positions),
                                   self->clock().now() + std::chrono::minutes{1},
                                   promise});
        st.poll();
        st.check_waits(self);
        return promise;
      },
      [self](stats_atom) { return self->state.stats; },
  };
}

} // namespace castor
