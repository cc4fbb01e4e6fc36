// SPDX-License-Identifier: Apache-2.0
#include "castor/executor.hpp"

#include "castor/logger.hpp"
#include "castor/watermark_core.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace castor {

namespace {

// Dead letters say what went wrong; an error text may not take the record's
// room.
constexpr size_t max_error_text = 1000;

std::string clip(std::string text) {
  if (text.size() > max_error_text) {
    text.resize(max_error_text);
    text += "...";
  }
  return text;
}

bool is_castor_header(const header& h) {
  return h.name.starts_with("castor.");
}

// Cuts `r` until it fits `limit` (as librdkafka counts): the value first,
// then the record's own headers (not castor.dlq.*), then the key; says so
// in a header.
void fit(producer_record& r, size_t limit) {
  auto size = kafka::record_wire_size(r);
  if (size <= limit)
    return;
  auto value_size = r.value ? r.value->size() : 0;
  auto key_size = r.key ? r.key->size() : 0;
  r.headers.push_back(
      {"castor.dlq.truncated",
       fmt::format("{} bytes cut to fit message.max.bytes {} (value {} bytes, key {})",
                   size, limit, value_size, key_size)});
  size = kafka::record_wire_size(r);
  auto cut = [&](auto& field) {
    if (!field || size <= limit)
      return;
    auto over = size - limit;
    field->resize(field->size() > over ? field->size() - over : 0);
    size = kafka::record_wire_size(r);
  };
  cut(r.value);
  if (size > limit) {
    std::erase_if(r.headers,
                  [](const header& h) { return !h.name.starts_with("castor.dlq."); });
    r.origin.reset();
    size = kafka::record_wire_size(r);
  }
  cut(r.key);
  // Last, the error text itself (a tiny message.max.bytes).
  for (auto& h : r.headers)
    if (h.name == "castor.dlq.error" && h.value && size > limit) {
      auto over = size - limit;
      h.value->resize(h.value->size() > over ? h.value->size() - over : 0);
      size = kafka::record_wire_size(r);
    }
}

// The castor.dlq.* headers: where the letter comes from and why.
void add_dlq_headers(producer_record& r, std::string topic,
                     std::optional<int32_t> partition, std::optional<int64_t> offset,
                     std::optional<timestamp> time, const std::string& error,
                     std::string stage) {
  auto text = [](auto x) {
    return x ? std::optional<std::string>{std::to_string(*x)} : std::nullopt;
  };
  r.headers.reserve(r.headers.size() + 6);
  r.headers.push_back({"castor.dlq.topic", std::move(topic)});
  r.headers.push_back({"castor.dlq.partition", text(partition)});
  r.headers.push_back({"castor.dlq.offset", text(offset)});
  r.headers.push_back({"castor.dlq.timestamp",
                       time ? std::optional<std::string>{std::to_string(to_millis(*time))}
                            : std::nullopt});
  r.headers.push_back({"castor.dlq.error", clip(error)});
  r.headers.push_back({"castor.dlq.stage", std::move(stage)});
}

} // namespace

caf::error executor_config::validate() const {
  if (records_per_batch == 0 || batches_in_flight == 0 || cycles_per_turn == 0 ||
      batch_size == 0)
    return make_error(ec::invalid_config, "the executor needs records_per_batch, "
                                          "batches_in_flight and cycles_per_turn of at "
                                          "least 1");
  if (max_message_bytes == 0)
    return make_error(ec::invalid_config, "max_message_bytes must be at least 1");
  if (cycles.what == cycle_policy::kind::bucket && cycles.bucket <= duration::zero())
    return make_error(ec::invalid_config, "cycles by bucket need a positive bucket");
  return {};
}

void executor_state::dead_letter(size_t index, const message_view& m,
                                 const std::string& stage, const std::string& error) {
  // The original message as it was, plus where it came from and why.
  auto original = kafka_record::copy_of(m);
  producer_record r;
  r.topic = config.dead_letter_topic;
  r.key = std::move(original.key);
  r.value = std::move(original.value);
  r.headers = std::move(original.headers);
  add_dlq_headers(r, std::string{m.topic}, m.partition, m.offset, m.time, error, stage);
  r.time = original.time;
  fit(r, config.max_message_bytes);
  logger()->warn("executor: dead-letters {}[{}] offset {} to {} ({}): {}", m.topic,
                 m.partition, m.offset, config.dead_letter_topic, stage, error);
  dead.emplace_back(index, std::move(r));
}

void executor_state::dead_letter_cycle(const std::string& stage,
                                       const std::string& error) {
  size_t inputs = 0;
  for (auto s : touched)
    inputs += per_source[s].size();
  logger()->warn("executor: {} failed: {}; dead-letters the cycle's {} input message(s) "
                 "and goes on",
                 stage, error, inputs);
  for (auto s : touched)
    for (size_t i = 0; i < per_source[s].size(); ++i)
      dead_letter(per_source_index[s][i], per_source[s][i], stage, error);
}

caf::error executor_state::feed_source(uint32_t s) {
  auto& graph = definition->graph();
  auto& views = per_source[s];
  auto& indices = per_source_index[s];
  auto& binding = definition->sources()[s];
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
      if (rejected[i]) {
        dead_letter(indices[i], views[i], "deserialize:" + binding.source, *rejected[i]);
      } else {
        views[kept] = views[i];
        indices[kept] = indices[i];
        ++kept;
      }
    }
    views.resize(kept);
    indices.resize(kept);
  }
  return {};
}

caf::error executor_state::check_sizes(size_t first, const std::string& sink) {
  auto limit = config.max_message_bytes;
  size_t kept = first;
  for (size_t i = first; i < out.size(); ++i) {
    auto& r = out[i];
    auto size = kafka::record_wire_size(r);
    if (size <= limit) {
      if (kept != i)
        out[kept] = std::move(r);
      ++kept;
      continue;
    }
    auto without_castor = r;
    std::erase_if(without_castor.headers, is_castor_header);
    without_castor.origin.reset();
    auto bare = r;
    bare.headers.clear();
    bare.origin.reset();
    auto text = fmt::format("sink '{}' made a record of {} bytes for topic '{}' ({} "
                            "without castor's headers, {} without any headers); the "
                            "producer's message.max.bytes is {}",
                            sink, size, r.topic, kafka::record_wire_size(without_castor),
                            kafka::record_wire_size(bare), limit);
    if (config.on_node_error == error_policy::stop) {
      ++stats.oversized;
      return make_error(ec::serialize_failed, std::move(text));
    }
    logger()->warn("executor: {}; dead-letters a copy cut to fit", text);
    auto letter = std::move(r);
    // An output record has no origin offset: the topic it was for.
    add_dlq_headers(letter, letter.topic, std::nullopt, std::nullopt, letter.time, text,
                    "produce:" + sink);
    letter.topic = config.dead_letter_topic;
    letter.partition.reset();
    fit(letter, limit);
    // Output dead letters follow the input ones of the cycle.
    dead.emplace_back(SIZE_MAX, std::move(letter));
  }
  out.resize(kept);
  return {};
}

caf::error executor_state::run_cycle(std::span<const consumed_message> messages,
                                     timestamp t) {
  auto& graph = definition->graph();
  for (auto s : touched) {
    per_source[s].clear();
    per_source_index[s].clear();
  }
  touched.clear();
  dead.clear();
  for (size_t i = 0; i < messages.size(); ++i) {
    auto& m = messages[i];
    auto& e = table->partitions[m.pid()];
    auto& views = per_source[e.source];
    if (views.empty())
      touched.push_back(e.source);
    views.push_back(m.view(e.topic, e.partition));
    per_source_index[e.source].push_back(i);
  }
  // Dead letters leave in the order of their messages, whatever stage
  // rejected them, after the cycle's records.
  auto flush_dead = [this] {
    std::stable_sort(dead.begin(), dead.end(),
                     [](auto& a, auto& b) { return a.first < b.first; });
    for (auto& [index, r] : dead) {
      // Counted once the cycle's outcome is known (a later failure drops
      // the output dead letters).
      ++stats.dead_lettered;
      if (index == SIZE_MAX)
        ++stats.oversized;
      out.push_back(std::move(r));
    }
    dead.clear();
  };
  auto outputs = out.size();
  auto result = [&]() -> caf::error {
    for (auto s : touched)
      if (auto err = feed_source(s))
        return err;
    if (auto failure = graph.execute(t)) {
      ++stats.failed_cycles;
      if (config.on_node_error == error_policy::stop)
        return make_error(ec::node_failed, failure->message());
      dead_letter_cycle("node:" + failure->node, failure->message());
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
      if (out.capacity() == 0)
        out.reserve(last_batch_records);
      auto first = out.size();
      try {
        binding.serialize(sink, out);
      } catch (const std::exception& e) {
        auto text = fmt::format("sink '{}' in cycle {}: {}", binding.sink,
                                graph.cycle_id(), e.what());
        ++stats.failed_cycles;
        if (config.on_node_error == error_policy::stop)
          return make_error(ec::serialize_failed, std::move(text));
        // No half cycle leaves: drop the records its other sinks made.
        out.resize(outputs);
        dead.erase(std::remove_if(dead.begin(), dead.end(),
                                  [](auto& d) { return d.first == SIZE_MAX; }),
                   dead.end());
        dead_letter_cycle("serialize:" + binding.sink, text);
        return {};
      }
      for (auto r = first; r < out.size(); ++r) {
        // A record without a time of its own gets the cycle's (as in Kafka
        // Streams): the output's bytes are reproducible.
        if (!out[r].time)
          out[r].time = graph.time();
        if (!out[r].topic.empty())
          continue;
        if (binding.default_topic.empty())
          return make_error(ec::serialize_failed,
                            fmt::format("sink '{}' made a record without a topic and has "
                                        "no default topic",
                                        binding.sink));
        out[r].topic = binding.default_topic;
      }
      if (auto err = check_sizes(first, binding.sink))
        return err;
    }
    return {};
  }();
  if (result)
    return result;
  flush_dead();
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

caf::error executor_state::step(job& j, size_t& budget) {
  if (config.cycles.what == cycle_policy::kind::batch)
    return step_by_release(j, budget);
  return step_by_time(j, budget);
}

caf::error executor_state::step_by_time(job& j, size_t& budget) {
  auto& graph = definition->graph();
  auto& messages = j.batch->messages;
  bool by_bucket = config.cycles.what == cycle_policy::kind::bucket;
  // A group is a timestamp, or a bucket; its cycle runs at the timestamp,
  // or at the bucket's end.
  auto group_of = [&](timestamp t) {
    return by_bucket ? config.cycles.bucket_start(t) : t;
  };
  auto cycle_time = [&](timestamp group) {
    return by_bucket ? group + config.cycles.bucket : group;
  };
  // The group's last instant: complete once every message up to it is out.
  auto last_of = [&](timestamp group) {
    return by_bucket ? group + config.cycles.bucket - duration{1} : group;
  };
  auto units_of = [&](const consumed_message& m) {
    return hold_units(m.bytes(), config.unit_bytes);
  };
  if (!j.started) {
    j.started = true;
    if (j.batch->live)
      live = true;
    // Messages of a group that was not complete at the last release come
    // first: the group goes on with this release's messages.
    // (Appended to the carry, not inserted before this release: a bucket
    // that spans many releases costs what comes, not what it holds. No
    // cycle has seen this release's messages yet: they may move.)
    if (!carry.empty()) {
      carry.insert(carry.end(), std::make_move_iterator(messages.begin()),
                   std::make_move_iterator(messages.end()));
      messages.swap(carry);
      carry.clear();
      j.scanned = std::exchange(carry_scanned, 0);
    }
    // Timers fire up to where the input is complete (replay), or up to the
    // wall clock (live; the executor's timer covers the rest).
    // Live, not beyond what is complete either: history still held at the
    // switch to live comes in later releases, and timers must not run
    // ahead of it.
    j.until = j.batch->live ? std::min(std::max(wall_clock_now(), graph.time()),
                                       j.batch->complete_until)
                            : j.batch->complete_until;
    // A replay release never makes the input complete to the end of time
    // (timers would run there): at most to its watermark.
    if (!j.batch->live && !j.batch->final && j.until == timestamp::max())
      j.until = j.batch->watermark;
    if (config.stop)
      j.until = std::min(j.until, *config.stop - duration{1});
    last_complete = j.batch->complete_until;
    // The DAG's initialisation cycle runs, with no input, at the time of the
    // first message: timers its nodes set count from the data's time.
    if (graph.cycle_id() == 0 && !messages.empty())
      if (auto err = run_cycle({}, messages.front().order_time))
        return err;
  }
  std::span<const consumed_message> all{messages};
  // Messages up to here asked into the cache (consumed_message::prefetch):
  // before each cycle, the 8 messages after it (in the one-message cycles
  // of distinct timestamps, 8 cycles ahead).
  size_t prefetched = 0;
  while (!j.done && budget > 0 && out.size() < config.records_per_batch) {
    auto due = graph.next_timer();
    if (j.next < all.size()) {
      auto group = group_of(all[j.next].order_time);
      auto t = cycle_time(group);
      // The carried messages are known to be of the first group.
      auto end = j.next == 0 ? j.scanned : j.next;
      // A timestamp runs in cycles of at most batch_size (units of the
      // hold, with unit_bytes: a larger message alone); a bucket is one
      // cycle whatever it holds (a count would make its cycles depend on
      // batch_size).
      size_t units = 0;
      bool full = false;
      for (auto k = j.next; k < end && !by_bucket; ++k)
        units += units_of(all[k]);
      while (end < all.size() && group_of(all[end].order_time) == group) {
        if (!by_bucket) {
          auto u = units_of(all[end]);
          if (end > j.next && units + u > config.batch_size) {
            full = true;
            break;
          }
          units += u;
        }
        ++end;
      }
      // A group is complete when every message up to its last instant is
      // out, or when its cycle is full (the first cycles of a timestamp in
      // merge order are always the same: its messages packed in order).
      bool complete = j.batch->final ||
                      (!by_bucket && (full || units >= config.batch_size)) ||
                      last_of(group) <= j.batch->complete_until;
      // Timers due before the group fire first, each in a cycle of its own:
      // whatever comes later sorts after the group (live too: the data says
      // that time has passed, whatever the wall clock).
      if (!skipping && due && *due < t && (!config.stop || *due < *config.stop)) {
        if (config.timer_catch_up > 0 && ++timer_streak > config.timer_catch_up) {
          skip_timers(*due, t);
          continue;
        }
        if (auto err = run_cycle({}, *due))
          return err;
        --budget;
        continue;
      }
      if (!complete) {
        // More of this group may come: it waits for the next release.
        // Only messages no cycle has seen move: the views of the cycles
        // run point into their messages (headers included) and need them
        // where they are until the release is done.
        carry_scanned = end - j.next;
        if (j.next == 0) {
          carry.swap(messages);
          messages.clear();
        } else {
          carry.assign(
              std::make_move_iterator(messages.begin() + static_cast<ptrdiff_t>(j.next)),
              std::make_move_iterator(messages.end()));
          messages.resize(j.next);
        }
        drop_revoked(j.id);
        all = std::span<const consumed_message>{messages};
        continue;
      }
      timer_streak = 0;
      skipping = false;
      constexpr size_t prefetch_ahead = 8;
      for (prefetched = std::max(prefetched, end);
           prefetched < std::min(all.size(), end + prefetch_ahead); ++prefetched)
        all[prefetched].prefetch();
      if (auto err =
              run_cycle(all.subspan(j.next, end - j.next), std::max(t, graph.time())))
        return err;
      j.next = end;
      --budget;
      continue;
    }
    // No message left: timers due up to the release's time.
    if (!skipping && !j.timers_done && due && *due <= j.until) {
      if (config.timer_catch_up > 0 && ++timer_streak > config.timer_catch_up) {
        skip_timers(*due, std::nullopt);
        continue;
      }
      auto before = graph.cycle_id();
      if (auto err = run_cycle({}, *due))
        return err;
      --budget;
      // A timer set again for a time already reached fires in the next cycle.
      if (graph.next_timer() && *graph.next_timer() <= graph.time() &&
          graph.cycle_id() > before)
        j.timers_done = true;
      continue;
    }
    j.done = true;
  }
  return {};
}

void executor_state::skip_timers(timestamp due, std::optional<timestamp> next_input) {
  // A gap without input: the periods it misses are skipped; the due timers
  // fire once, in the cycle of the next input.
  ++stats.timer_skips;
  skipping = true;
  logger()->warn("executor: timers fired {} times in a row without input up to {}; "
                 "skips the periods missed until {} (engine.timer_catch_up)",
                 config.timer_catch_up, to_string(due),
                 next_input ? to_string(*next_input) : std::string{"the next input"});
}

caf::error executor_state::step_by_release(job& j, size_t& budget) {
  auto& graph = definition->graph();
  std::span<const consumed_message> messages{j.batch->messages};
  if (!j.started) {
    j.started = true;
    // The cycle time: the watermark in replay (no further than what is
    // complete: pacing and a stop bound it), the wall clock when live; the
    // last release of a bounded replay runs to the stop.
    j.until = j.batch->final ? j.batch->complete_until
                             : std::min(j.batch->watermark, j.batch->complete_until);
    last_complete = j.batch->complete_until;
    if (j.batch->live) {
      live = true;
      j.until = std::max(wall_clock_now(), graph.time());
      if (config.stop)
        j.until = std::min(j.until, *config.stop - duration{1});
    }
    // The DAG's initialisation cycle runs, with no input, at the time of the
    // first message: timers its nodes set count from the data's time.
    if (graph.cycle_id() == 0 && !messages.empty())
      if (auto err = run_cycle({}, std::min(messages.front().order_time, j.until)))
        return err;
  }
  // Timers fire at their own time, each in a cycle with the messages up to
  // it: in replay, and when live too, so history released after the switch
  // to live (or a burst) gives the same results as in replay.
  while (!j.done && budget > 0 && out.size() < config.records_per_batch) {
    auto due = graph.next_timer();
    if (!j.timers_done && due && *due <= j.until) {
      auto end = j.next;
      while (end < messages.size() && messages[end].order_time <= *due)
        ++end;
      timer_streak = end == j.next ? timer_streak + 1 : 0;
      if (config.timer_catch_up > 0 && timer_streak > config.timer_catch_up) {
        // A gap without input: skip the periods it misses.
        auto to = j.next < messages.size() ? messages[j.next].order_time : j.until;
        if (to > *due) {
          ++stats.timer_skips;
          logger()->warn("executor: timers fired {} times in a row without input up to "
                         "{}; skips the periods missed until {} (engine.timer_catch_up)",
                         config.timer_catch_up, to_string(graph.time()), to_string(to));
          timer_streak = 0;
          due = to;
          while (end < messages.size() && messages[end].order_time <= *due)
            ++end;
        }
      }
      auto before = graph.cycle_id();
      if (auto err = run_cycle(messages.subspan(j.next, end - j.next), *due))
        return err;
      j.next = end;
      --budget;
      // A timer set again for a time already reached fires in the next cycle.
      if (graph.next_timer() && *graph.next_timer() <= graph.time() &&
          graph.cycle_id() > before)
        j.timers_done = true;
      continue;
    }
    if (j.next < messages.size()) {
      timer_streak = 0;
      if (auto err = run_cycle(messages.subspan(j.next), j.until))
        return err;
      j.next = messages.size();
      --budget;
    }
    j.done = true;
  }
  return {};
}

void executor_state::send(pointer self, job& j) {
  std::span<const consumed_message> messages{j.batch->messages};
  // The producer learns the positions even of cycles that made no record:
  // they become committable in order with everything before.
  auto positions = positions_of(messages.subspan(j.reported, j.next - j.reported));
  j.reported = j.next;
  for (auto [pid, next] : positions)
    if (pid < sent_positions.size())
      sent_positions[pid] = std::max(sent_positions[pid], next);
  if (out.empty() && positions.empty())
    return;
  auto batch = std::make_shared<record_batch>();
  if (!out.empty())
    last_batch_records = std::min(out.size(), config.records_per_batch);
  batch->records = std::exchange(out, {});
  batch->positions = std::move(positions);
  batch->cycle_id = definition->graph().cycle_id();
  // The records' borrowed bytes are this release's (a batch holds the
  // records of one release's cycles: it is sent when the release is done or
  // the batch is full).
  batch->input = j.batch;
  ++batches_in_flight;
  ++j.outstanding;
  self->request(producer, caf::infinite, std::move(batch))
      .then(
          [self, id = j.id](ack_atom) {
            auto& st = self->state;
            --st.batches_in_flight;
            auto i = std::find_if(st.jobs.begin(), st.jobs.end(),
                                  [id](const job& x) { return x.id == id; });
            if (i != st.jobs.end())
              --i->outstanding;
            st.work(self);
          },
          [self](caf::error& err) { self->state.fail(self, err); });
}

void executor_state::work(pointer self) {
  size_t budget = config.cycles_per_turn;
  for (auto& j : jobs) {
    while (!j.done && budget > 0 && batches_in_flight < config.batches_in_flight) {
      if (auto err = step(j, budget)) {
        logger()->error("executor: stops: {}", render(err));
        fail(self, err);
        return;
      }
      if (j.done || out.size() >= config.records_per_batch)
        send(self, j);
    }
    if (!j.done)
      break; // releases run in order
  }
  // Answer the releases that are finished, in order.
  while (!jobs.empty() && jobs.front().done && jobs.front().outstanding == 0) {
    if (jobs.front().promise)
      jobs.front().promise->deliver(ack_atom::value);
    jobs.pop_front();
  }
  answer_revocations();
  if (jobs.empty()) {
    arm_timer(self);
    if (batches_in_flight == 0 && drained) {
      drained->deliver(ack_atom::value);
      drained.reset();
    }
    return;
  }
  // Out of budget with work left (and room at the producer): go on after
  // whatever else is in the mailbox.
  if (budget == 0 && batches_in_flight < config.batches_in_flight && !resuming) {
    resuming = true;
    self->send(self, run_atom::value);
  }
}

void executor_state::drop_revoked(uint64_t job_id) {
  // Nothing in the carry can be older than the latest revocation once the
  // releases go past it.
  if (carry.empty() || job_id >= latest_revocation)
    return;
  // Only messages of releases before the revocation: a partition assigned
  // again comes in later releases.
  auto gone = [&](const consumed_message& m) {
    return m.pid() < revoked_before.size() && job_id < revoked_before[m.pid()];
  };
  auto scanned =
      carry_scanned -
      static_cast<size_t>(std::count_if(
          carry.begin(), carry.begin() + static_cast<ptrdiff_t>(carry_scanned), gone));
  auto dropped = std::erase_if(carry, gone);
  carry_scanned = scanned;
  stats.revoked_dropped += dropped;
}

void executor_state::answer_revocations() {
  while (!revocations.empty() &&
         (jobs.empty() || jobs.front().id >= revocations.front().upto)) {
    auto& r = revocations.front();
    revocation answer;
    answer.dropped = stats.revoked_dropped - r.dropped_before;
    for (auto pid : r.pids)
      if (pid < sent_positions.size() && sent_positions[pid] >= 0)
        answer.positions.emplace_back(pid, sent_positions[pid]);
    r.promise.deliver(std::move(answer));
    revocations.pop_front();
  }
}

void executor_state::fail(pointer self, const caf::error& err) {
  for (auto& j : jobs)
    if (j.promise)
      j.promise->deliver(err);
  jobs.clear();
  self->quit(err);
}

void executor_state::arm_timer(pointer self) {
  auto due = definition->graph().next_timer();
  if (!live || !due || (armed && *armed == *due) || (config.stop && *due >= *config.stop))
    return;
  armed = *due;
  auto wait = std::max(duration::zero(), *due - wall_clock_now());
  self->delayed_send(self, wait, timer_atom::value);
}

executor_actor::behavior_type executor(executor_state::pointer self,
                                       pipeline_definition_ptr definition,
                                       producer_actor producer, executor_config config) {
  auto& st = self->state;
  if (auto err = config.validate())
    self->quit(err);
  st.config = std::move(config);
  st.definition = std::move(definition);
  st.producer = std::move(producer);
  auto& graph = st.definition->graph();
  st.per_source.resize(st.definition->sources().size());
  st.per_source_index.resize(st.definition->sources().size());
  for (size_t i = 0; i < st.definition->sinks().size(); ++i) {
    auto handle = graph.find_sink(st.definition->sinks()[i].sink);
    if (handle)
      st.sink_index.emplace(handle->get(), i);
  }
  return {
      [self](start_atom, partition_table_ptr& table) {
        self->state.sent_positions.assign(table->partitions.size(), -1);
        self->state.table = std::move(table);
      },
      [self](release_batch_ptr& batch) -> caf::result<ack_atom> {
        auto& st = self->state;
        auto promise = self->make_response_promise<ack_atom>();
        executor_state::job j;
        j.id = st.next_job_id++;
        j.batch = std::move(batch);
        j.promise = promise;
        st.jobs.push_back(std::move(j));
        st.work(self);
        return promise;
      },
      [self](run_atom) {
        self->state.resuming = false;
        self->state.work(self);
      },
      [self](timer_atom) {
        auto& st = self->state;
        st.armed.reset();
        if (!st.jobs.empty())
          return; // the releases run the due timers; the timer is armed after
        // History still held at the switch to live (a group carried, or
        // input not complete yet): its releases fire the timers in order.
        // (With a stop time, the input is complete up to just before it.)
        auto complete = st.config.stop ? *st.config.stop - duration{1} : timestamp::max();
        if (!st.carry.empty() || st.last_complete < complete)
          return;
        auto& graph = st.definition->graph();
        auto now = std::max(wall_clock_now(), graph.time());
        if (st.config.stop)
          now = std::min(now, *st.config.stop - duration{1});
        if (auto due = graph.next_timer(); st.live && due && *due <= now) {
          // The timer's cycle runs at its time (at the wall clock with
          // batch cycles, whose live cycles all do).
          auto at = st.config.cycles.what == cycle_policy::kind::batch
                        ? now
                        : std::max(*due, graph.time());
          if (auto err = st.run_cycle({}, at)) {
            logger()->error("executor: stops: {}", render(err));
            st.fail(self, err);
            return;
          }
          if (!st.out.empty()) {
            // A job of its own, with no messages, so that its records are
            // sent in order with the releases'.
            executor_state::job j;
            j.id = st.next_job_id++;
            j.batch = std::make_shared<release_batch>();
            j.started = true;
            j.done = true;
            st.jobs.push_back(std::move(j));
            st.send(self, st.jobs.back());
          }
        }
        st.arm_timer(self);
      },
      [self](revoke_atom, std::vector<uint32_t>& pids) -> caf::result<revocation> {
        auto& st = self->state;
        auto n = st.table ? st.table->partitions.size() : 0;
        st.revoked_before.resize(n, 0);
        for (auto pid : pids)
          if (pid < n)
            st.revoked_before[pid] = st.next_job_id;
        st.latest_revocation = st.next_job_id;
        auto promise = self->make_response_promise<revocation>();
        st.revocations.push_back(
            {st.next_job_id, std::move(pids), st.stats.revoked_dropped, promise});
        // Whatever waits in the carry came from releases before this
        // message (a release under way carries its rest when it ends, and
        // drops those then).
        if (st.next_job_id > 0)
          st.drop_revoked(st.next_job_id - 1);
        st.answer_revocations();
        return promise;
      },
      [self](drain_atom) -> caf::result<ack_atom> {
        auto& st = self->state;
        if (st.jobs.empty() && st.batches_in_flight == 0)
          return ack_atom::value;
        auto promise = self->make_response_promise<ack_atom>();
        st.drained = promise;
        return promise;
      },
      [self](stats_atom) {
        auto& st = self->state;
        auto stats = st.stats;
        stats.waiting = st.carry.size();
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
