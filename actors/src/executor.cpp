// SPDX-License-Identifier: Apache-2.0
#include "castor/executor.hpp"

#include "castor/logger.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace castor {

void executor_state::dead_letter(const message_view& m, const std::string& stage,
                                 const std::string& error,
                                 std::vector<producer_record>& out) {
  // The original message as it was, plus where it came from and why.
  auto original = kafka_record::copy_of(m);
  producer_record r;
  r.topic = config.dead_letter_topic;
  r.key = std::move(original.key);
  r.value = std::move(original.value);
  r.headers = std::move(original.headers);
  r.headers.reserve(r.headers.size() + 6);
  r.headers.push_back({"castor.dlq.topic", std::string{m.topic}});
  r.headers.push_back({"castor.dlq.partition", std::to_string(m.partition)});
  r.headers.push_back({"castor.dlq.offset", std::to_string(m.offset)});
  r.headers.push_back(
      {"castor.dlq.timestamp",
       m.time ? std::optional<std::string>{std::to_string(to_millis(*m.time))}
              : std::nullopt});
  r.headers.push_back({"castor.dlq.error", error});
  r.headers.push_back({"castor.dlq.stage", stage});
  r.time = original.time;
  logger()->warn("executor: dead-letters {}[{}] offset {} to {} ({}): {}", m.topic,
                 m.partition, m.offset, config.dead_letter_topic, stage, error);
  ++stats.dead_lettered;
  out.push_back(std::move(r));
}

void executor_state::dead_letter_cycle(const std::string& stage, const std::string& error,
                                       std::vector<producer_record>& out) {
  size_t inputs = 0;
  for (auto s : touched)
    inputs += per_source[s].size();
  logger()->warn("executor: {} failed: {}; dead-letters the cycle's {} input message(s) "
                 "and goes on",
                 stage, error, inputs);
  for (auto s : touched)
    for (auto& v : per_source[s])
      dead_letter(v, stage, error, out);
}

caf::error executor_state::feed_source(uint32_t s, std::vector<producer_record>& out) {
  auto& graph = definition->graph();
  auto& views = per_source[s];
  auto& binding = definition->sources()[s];
  auto stage = "deserialize:" + binding.source;
  while (!views.empty()) {
    std::optional<size_t> bad;
    std::string reason;
    try {
      binding.feed(graph, views);
      return {};
    } catch (const deserialize_error& e) {
      bad = std::min(e.index(), views.size() - 1);
      reason = e.what();
    } catch (const std::exception& e) {
      reason = e.what();
    }
    if (config.on_deserialize_error == error_policy::stop) {
      if (bad) {
        auto& v = views[*bad];
        return make_error(ec::deserialize_failed,
                          fmt::format("source '{}' rejected {}[{}] offset {}: {}",
                                      binding.source, v.topic, v.partition, v.offset,
                                      reason));
      }
      auto& v = views.front();
      return make_error(
          ec::deserialize_failed,
          fmt::format("source '{}' rejected {} message(s) from {}[{}] offset {} on: {}",
                      binding.source, views.size(), v.topic, v.partition, v.offset,
                      reason));
    }
    // Dead-letter what was rejected and feed the rest again. When the
    // deserializer did not say which message it rejected, each one is tried
    // alone; if each passes alone, the cycle's messages go together.
    std::vector<std::optional<std::string>> rejected(views.size());
    if (bad) {
      rejected[*bad] = reason;
    } else {
      bool any = false;
      for (size_t i = 0; i < views.size(); ++i) {
        try {
          binding.check(std::span<const message_view>{&views[i], 1});
        } catch (const std::exception& e) {
          rejected[i] = e.what();
          any = true;
        }
      }
      if (!any)
        for (auto& r : rejected)
          r = reason;
    }
    size_t kept = 0;
    for (size_t i = 0; i < views.size(); ++i) {
      if (rejected[i])
        dead_letter(views[i], stage, *rejected[i], out);
      else
        views[kept++] = views[i];
    }
    views.resize(kept);
  }
  return {};
}

caf::error executor_state::run_cycle(std::span<const consumed_message> messages,
                                     timestamp t, std::vector<producer_record>& out) {
  auto& graph = definition->graph();
  for (auto s : touched)
    per_source[s].clear();
  touched.clear();
  for (auto& m : messages) {
    auto& e = table->partitions[m.pid()];
    auto& views = per_source[e.source];
    if (views.empty())
      touched.push_back(e.source);
    views.push_back(m.view(e.topic, e.partition));
  }
  for (auto s : touched)
    if (auto err = feed_source(s, out))
      return err;
  auto outputs = out.size();
  if (auto failure = graph.execute(t)) {
    ++stats.failed_cycles;
    if (config.on_node_error == error_policy::stop)
      return make_error(ec::node_failed, failure->message());
    dead_letter_cycle("node:" + failure->node, failure->message(), out);
    return {};
  }
  ++stats.cycles;
  {
    auto seconds = std::chrono::duration<double>(graph.last_cycle().elapsed).count();
    if (stats.cycle_buckets.empty())
      stats.cycle_buckets.assign(cycle_duration_bounds.size() + 1, 0);
    auto bucket = std::lower_bound(cycle_duration_bounds.begin(),
                                   cycle_duration_bounds.end(), seconds) -
                  cycle_duration_bounds.begin();
    ++stats.cycle_buckets[static_cast<size_t>(bucket)];
    stats.cycle_seconds += seconds;
  }
  for (auto& sink : graph.updated_sinks()) {
    auto i = sink_index.find(sink.get());
    if (i == sink_index.end())
      continue;
    auto& binding = definition->sinks()[i->second];
    auto first = out.size();
    try {
      binding.serialize(sink, out);
    } catch (const std::exception& e) {
      auto text = fmt::format("sink '{}' in cycle {}: {}", binding.sink, graph.cycle_id(),
                              e.what());
      ++stats.failed_cycles;
      if (config.on_node_error == error_policy::stop)
        return make_error(ec::serialize_failed, std::move(text));
      // No half cycle leaves: drop the records its other sinks made.
      out.resize(outputs);
      dead_letter_cycle("serialize:" + binding.sink, text, out);
      return {};
    }
    for (auto r = first; r < out.size(); ++r) {
      if (!out[r].topic.empty())
        continue;
      if (binding.default_topic.empty())
        return make_error(
            ec::serialize_failed,
            fmt::format("sink '{}' made a record without a topic and has no "
                        "default topic",
                        binding.sink));
      out[r].topic = binding.default_topic;
    }
  }
  return {};
}

std::vector<partition_position>
executor_state::positions_of(std::span<const consumed_message> messages) {
  std::vector<partition_position> result;
  if (next_offsets.size() < table->partitions.size())
    next_offsets.resize(table->partitions.size(), -1);
  for (auto& m : messages) {
    auto& next = next_offsets[m.pid()];
    if (next < 0)
      result.emplace_back(m.pid(), 0);
    next = std::max(next, m.offset() + 1);
  }
  for (auto& [pid, next] : result) {
    next = next_offsets[pid];
    next_offsets[pid] = -1;
  }
  return result;
}

caf::error executor_state::run_release(release_batch& batch,
                                       std::vector<producer_record>& out) {
  auto& graph = definition->graph();
  std::span<const consumed_message> messages{batch.messages};
  // The cycle time: the watermark in replay, the wall clock when live.
  auto until = batch.watermark;
  if (batch.live) {
    live = true;
    until = std::max(wall_clock_now(), graph.time());
  }
  // The DAG's initialisation cycle runs, with no input, at the time of the
  // first message: timers its nodes set count from the data's time.
  if (graph.cycle_id() == 0 && !messages.empty())
    if (auto err = run_cycle({}, std::min(messages.front().order_time, until), out))
      return err;
  // Timers fire at their own time, each in a cycle with the messages up to
  // it: in replay, and when live too, so history released after the switch
  // to live (or a burst) gives the same results as in replay.
  size_t start = 0;
  while (true) {
    auto due = graph.next_timer();
    if (!due || *due > until)
      break;
    auto end = start;
    while (end < messages.size() && messages[end].order_time <= *due)
      ++end;
    auto before = graph.cycle_id();
    if (auto err = run_cycle(messages.subspan(start, end - start), *due, out))
      return err;
    start = end;
    // A timer set again for a time already reached fires in the next cycle.
    if (graph.next_timer() && *graph.next_timer() <= graph.time() &&
        graph.cycle_id() > before)
      break;
  }
  if (start < messages.size())
    return run_cycle(messages.subspan(start), until, out);
  return {};
}

template <class F>
void executor_state::produce(executor_actor::stateful_pointer<executor_state> self,
                             std::vector<producer_record>&& records,
                             std::vector<partition_position>&& positions, F done) {
  auto batch = std::make_shared<record_batch>();
  batch->records = std::move(records);
  batch->positions = std::move(positions);
  batch->cycle_id = definition->graph().cycle_id();
  ++batches_in_flight;
  self->request(producer, caf::infinite, std::move(batch))
      .then(
          [self, done](ack_atom) mutable {
            auto& st = self->state;
            --st.batches_in_flight;
            done();
            if (st.batches_in_flight == 0 && st.drained) {
              st.drained->deliver(ack_atom::value);
              st.drained.reset();
            }
          },
          [self](caf::error& err) { self->quit(std::move(err)); });
}

void executor_state::arm_timer(executor_actor::stateful_pointer<executor_state> self) {
  auto due = definition->graph().next_timer();
  if (!live || !due || (armed && *armed == *due))
    return;
  armed = *due;
  auto wait = std::max(duration::zero(), *due - wall_clock_now());
  self->delayed_send(self, wait, timer_atom::value);
}

executor_actor::behavior_type
executor(executor_actor::stateful_pointer<executor_state> self,
         pipeline_definition_ptr definition, producer_actor producer,
         executor_config config) {
  auto& st = self->state;
  st.config = std::move(config);
  st.definition = std::move(definition);
  st.producer = std::move(producer);
  auto& graph = st.definition->graph();
  st.per_source.resize(st.definition->sources().size());
  for (size_t i = 0; i < st.definition->sinks().size(); ++i) {
    auto handle = graph.find_sink(st.definition->sinks()[i].sink);
    if (handle)
      st.sink_index.emplace(handle->get(), i);
  }
  return {
      [self](start_atom, partition_table_ptr& table) {
        self->state.table = std::move(table);
      },
      [self](release_batch_ptr& batch) -> caf::result<ack_atom> {
        auto& st = self->state;
        std::vector<producer_record> records;
        if (auto err = st.run_release(*batch, records)) {
          logger()->error("executor: stops: {}", render(err));
          self->quit(err);
          return err;
        }
        st.arm_timer(self);
        // The producer learns the positions even of a release that made no
        // record: they become committable in order with everything before.
        auto positions = st.positions_of(batch->messages);
        if (records.empty() && positions.empty())
          return ack_atom::value;
        auto promise = self->make_response_promise<ack_atom>();
        st.produce(self, std::move(records), std::move(positions),
                   [promise]() mutable { promise.deliver(ack_atom::value); });
        return promise;
      },
      [self](timer_atom) {
        auto& st = self->state;
        st.armed.reset();
        auto& graph = st.definition->graph();
        auto now = std::max(wall_clock_now(), graph.time());
        if (auto due = graph.next_timer(); st.live && due && *due <= now) {
          std::vector<producer_record> records;
          if (auto err = st.run_cycle({}, now, records)) {
            logger()->error("executor: stops: {}", render(err));
            self->quit(err);
            return;
          }
          if (!records.empty())
            st.produce(self, std::move(records), {}, [] {});
        }
        st.arm_timer(self);
      },
      [self](drain_atom) -> caf::result<ack_atom> {
        auto& st = self->state;
        if (st.batches_in_flight == 0)
          return ack_atom::value;
        auto promise = self->make_response_promise<ack_atom>();
        st.drained = promise;
        return promise;
      },
      [self](stats_atom) {
        auto& st = self->state;
        auto stats = st.stats;
        for (auto& node : st.definition->graph().nodes())
          stats.nodes.push_back(
              node_counters{node.name(), node.metrics().runs,
                            std::chrono::duration_cast<std::chrono::nanoseconds>(
                                node.metrics().total_time)
                                .count()});
        return stats;
      },
  };
}

} // namespace castor
