// SPDX-License-Identifier: Apache-2.0
#include "castor/pipeline.hpp"

#include "castor/consumer.hpp"
#include "castor/executor.hpp"
#include "castor/logger.hpp"
#include "castor/orchestrator.hpp"
#include "castor/producer.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/spawn_options.hpp>
#include <caf/system_messages.hpp>
#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <set>

namespace castor {

void merge_into(pipeline_stats& into, const pipeline_stats& from) {
  into.consumed += from.consumed;
  into.released += from.released;
  into.held += from.held;
  into.held_peak = std::max(into.held_peak, from.held_peak);
  into.paused_partitions += from.paused_partitions;
  into.pauses += from.pauses;
  into.resumes += from.resumes;
  into.late += from.late;
  into.idled += from.idled;
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
  into.watermark_ms = std::max(into.watermark_ms, from.watermark_ms);
  into.live = into.live || from.live;
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

// -- definition and config ------------------------------------------------------

pipeline_definition::pipeline_definition(std::unique_ptr<castor::dag> graph)
    : dag_(std::move(graph)) {}

caf::error pipeline_definition::validate() const {
  if (sources_.empty())
    return make_error(ec::invalid_config, "the pipeline binds no source to a topic");
  std::set<std::string> topics;
  std::set<std::string> sources;
  for (auto& s : sources_) {
    if (s.topic.empty())
      return make_error(
          ec::invalid_config,
          fmt::format("source '{}' is bound to an empty topic name", s.source));
    if (!dag_->find_source(s.source))
      return make_error(
          ec::invalid_config,
          fmt::format("'{}' is not a source of the pipeline's DAG", s.source));
    if (!topics.insert(s.topic).second)
      return make_error(
          ec::invalid_config,
          fmt::format("topic '{}' is bound to more than one source", s.topic));
    if (!sources.insert(s.source).second)
      return make_error(
          ec::invalid_config,
          fmt::format("source '{}' is bound to more than one topic", s.source));
  }
  std::set<std::string> sinks;
  for (auto& s : sinks_) {
    if (!dag_->find_sink(s.sink))
      return make_error(ec::invalid_config,
                        fmt::format("'{}' is not a sink of the pipeline's DAG", s.sink));
    if (!sinks.insert(s.sink).second)
      return make_error(ec::invalid_config,
                        fmt::format("sink '{}' is bound more than once", s.sink));
  }
  return {};
}

const char* to_string(error_policy policy) noexcept {
  return policy == error_policy::stop ? "stop" : "dead_letter";
}

caf::expected<error_policy> parse_error_policy(std::string_view text) {
  if (text == "stop")
    return error_policy::stop;
  if (text == "dead_letter")
    return error_policy::dead_letter;
  return make_error(ec::invalid_config,
                    fmt::format("error policy '{}': expected stop or dead_letter", text));
}

caf::error pipeline_config::validate() const {
  if (dead_letter_topic.empty() && (on_deserialize_error == error_policy::dead_letter ||
                                    on_node_error == error_policy::dead_letter))
    return make_error(ec::invalid_config,
                      "the dead_letter error policy needs a dead_letter_topic");
  if (commit_interval < duration::zero())
    return make_error(ec::invalid_config, "commit_interval must not be negative");
  if (batch_size == 0 || batch_size > max_batch_size)
    return make_error(ec::invalid_config, fmt::format("batch_size must be from 1 to {}, "
                                                      "not {}",
                                                      max_batch_size, batch_size));
  if (producer.contains("transactional.id"))
    return make_error(ec::invalid_config,
                      "producer property transactional.id: castor does not support "
                      "transactions yet (its producer is idempotent; delivery is "
                      "at-least-once)");
  if (releases_in_flight == 0)
    return make_error(ec::invalid_config, "releases_in_flight must be at least 1");
  if (idle_timeout <= duration::zero())
    return make_error(ec::invalid_config, "idle_timeout must be positive");
  if (startup_timeout <= duration::zero())
    return make_error(ec::invalid_config, "startup_timeout must be positive");
  if (!consumer.contains("bootstrap.servers"))
    return make_error(ec::invalid_config,
                      "consumer property bootstrap.servers is missing");
  if (!producer.contains("bootstrap.servers"))
    return make_error(ec::invalid_config,
                      "producer property bootstrap.servers is missing");
  return {};
}

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<pipeline_stats>("castor.pipeline_stats");
}

// -- supervisor -----------------------------------------------------------------

namespace {

// A topic castor writes and reads is an endless feedback loop.
caf::error check_feedback(const pipeline_definition& def, const pipeline_config& cfg) {
  std::set<std::string> read;
  for (auto& s : def.sources())
    read.insert(s.topic);
  for (auto& s : def.sinks())
    if (read.contains(s.default_topic))
      return make_error(ec::invalid_config,
                        fmt::format("sink '{}' writes to topic '{}', which is also a "
                                    "source topic: castor would read its own output "
                                    "again, forever",
                                    s.sink, s.default_topic));
  if (read.contains(cfg.dead_letter_topic))
    return make_error(ec::invalid_config,
                      fmt::format("the dead-letter topic '{}' is also a source topic "
                                  "(dead letters of dead letters)",
                                  cfg.dead_letter_topic));
  return {};
}

struct supervisor_state {
  static inline const char* name = "castor.pipeline";

  // Not an aggregate: CAF would try to build the state from the actor pointer.
  supervisor_state() = default;

  producer_actor producer;
  executor_actor executor;
  orchestrator_actor orchestrator;
  consumer_actor consumer;
  pipeline_config config;
  bool stopping = false;
  /// Tells the consumer's start-up to give up (set when the pipeline stops).
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);

  // -- the ordered stop --
  enum class step : uint8_t {
    drain_consumer,
    drain_orchestrator,
    drain_executor,
    flush,
    commit,
    finish
  };
  step next = step::drain_consumer;
  /// Every step of the stop ends by then, answered or not.
  caf::actor_clock::time_point deadline;
  uint64_t undelivered = 0;
  caf::error commit_error;
  /// The first error a component exited with during the stop.
  caf::error component_error;
};

using supervisor_pointer = pipeline_actor::stateful_pointer<supervisor_state>;

// Asks every live component for its counters and merges them.
template <class F>
void collect_stats(supervisor_pointer self, F done) {
  auto& st = self->state;
  auto merged = std::make_shared<pipeline_stats>();
  auto left = std::make_shared<int>(4);
  auto one = [merged, left, done](const pipeline_stats* part) mutable {
    if (part != nullptr)
      merge_into(*merged, *part);
    if (--*left == 0)
      done(*merged);
  };
  auto ask = [&](const auto& target) {
    if (!target) {
      one(nullptr);
      return;
    }
    // Short while stopping: the summary must not wait for a stuck component.
    auto timeout = st.stopping ? std::chrono::seconds{1} : std::chrono::seconds{5};
    self->request(target, timeout, stats_atom::value)
        .then([one](pipeline_stats& s) mutable { one(&s); },
              [one](caf::error&) mutable { one(nullptr); });
  };
  ask(st.consumer);
  ask(st.orchestrator);
  ask(st.executor);
  ask(st.producer);
}

// Ends every component with `reason` (they are linked to the supervisor).
void exit_components(supervisor_pointer self, caf::error reason) {
  auto& st = self->state;
  self->send_exit(st.consumer, reason);
  self->send_exit(st.orchestrator, reason);
  self->send_exit(st.executor, reason);
  self->send_exit(st.producer, reason);
}

void fail(supervisor_pointer self, caf::error err) {
  auto& st = self->state;
  if (st.stopping)
    return;
  st.stopping = true;
  st.cancel->store(true);
  logger()->error("pipeline: stops on error: {}", render(err));
  exit_components(self, caf::exit_reason::user_shutdown);
  self->quit(std::move(err));
}

// The last step of a clean stop: counters, a summary line, then exit.
void finish(supervisor_pointer self) {
  collect_stats(self, [self](const pipeline_stats& s) {
    auto& st = self->state;
    logger()->info("pipeline: stopped: {} consumed, {} released, {} cycles, {} "
                   "produced, {} delivered, {} undelivered, {} delivery errors, {} "
                   "dead-lettered, {} commits",
                   s.consumed, s.released, s.cycles, s.produced, s.delivered,
                   st.undelivered, s.delivery_errors, s.dead_lettered, s.commits);
    exit_components(self, caf::exit_reason::user_shutdown);
    if (st.component_error)
      self->quit(st.component_error);
    else if (st.undelivered > 0)
      self->quit(make_error(ec::produce_failed,
                            fmt::format("{} record(s) not delivered within the flush "
                                        "timeout",
                                        st.undelivered)));
    else if (st.commit_error)
      self->quit(st.commit_error);
    else
      self->quit();
  });
}

// Time left until the stop's deadline (at least a millisecond).
caf::timespan time_left(supervisor_pointer self) {
  auto left = self->state.deadline - self->clock().now();
  return std::max(std::chrono::duration_cast<caf::timespan>(left),
                  caf::timespan{std::chrono::milliseconds{1}});
}

void run_stop_step(supervisor_pointer self);

// A step that got no answer goes on to the next one: a stop never hangs on
// a component that is stuck (a full producer queue with the broker gone).
// A component that is gone (it exited: its reason is recorded) is skipped.
void step_failed(supervisor_pointer self, const char* what, const caf::error& err) {
  if (err == caf::sec::request_receiver_down)
    logger()->debug("pipeline: stop: the {} is gone", what);
  else if (err == caf::sec::request_timeout)
    logger()->warn("pipeline: stop: no answer from the {} in time; goes on", what);
  else
    logger()->warn("pipeline: stop: the {} answered {}; goes on", what, render(err));
  run_stop_step(self);
}

// Ordered shutdown, one step after the other, all within flush_timeout plus
// a few seconds: the consumer stops reading, the orchestrator stops
// releasing, the executor finishes its cycles, the producer delivers what it
// holds, and the consumer commits what was delivered.
void run_stop_step(supervisor_pointer self) {
  auto& st = self->state;
  using step = supervisor_state::step;
  auto current = st.next;
  if (current != step::finish)
    st.next = static_cast<step>(static_cast<uint8_t>(current) + 1);
  auto go_on = [self](ack_atom) { run_stop_step(self); };
  switch (current) {
  case step::drain_consumer:
    self->request(st.consumer, time_left(self), drain_atom::value)
        .then(go_on, [self](caf::error& e) { step_failed(self, "consumer", e); });
    return;
  case step::drain_orchestrator:
    self->request(st.orchestrator, time_left(self), drain_atom::value)
        .then(go_on, [self](caf::error& e) { step_failed(self, "orchestrator", e); });
    return;
  case step::drain_executor:
    self->request(st.executor, time_left(self), drain_atom::value)
        .then(go_on, [self](caf::error& e) { step_failed(self, "executor", e); });
    return;
  case step::flush: {
    // The flush may take flush_timeout; the commit after it keeps a second.
    auto flush =
        std::min(std::chrono::duration_cast<caf::timespan>(st.config.flush_timeout),
                 time_left(self) - std::chrono::seconds{1});
    flush = std::max(flush, caf::timespan{std::chrono::milliseconds{1}});
    self->request(st.producer, time_left(self), flush_atom::value, flush)
        .then(
            [self](uint64_t undelivered) {
              self->state.undelivered = undelivered;
              run_stop_step(self);
            },
            [self](caf::error& e) {
              // Whatever was not delivered is not committed either.
              self->state.undelivered = std::max<uint64_t>(self->state.undelivered, 1);
              step_failed(self, "producer", e);
            });
    return;
  }
  case step::commit: {
    auto left = time_left(self);
    auto wait = std::max(left - std::chrono::milliseconds{100},
                         caf::timespan{std::chrono::milliseconds{1}});
    self->request(st.consumer, left, commit_atom::value, wait)
        .then(go_on, [self](caf::error& err) {
          if (err == caf::sec::request_receiver_down) {
            run_stop_step(self); // no consumer, nothing to commit
            return;
          }
          // No answer in time is a Kafka error too (exit code 4).
          if (code_of(err) == ec::none)
            err = make_error(ec::kafka_error,
                             "final commit: no answer from the brokers in time");
          logger()->error("pipeline: final commit failed: {} (the next run "
                          "repeats what came after the last commit)",
                          render(err));
          self->state.commit_error = std::move(err);
          run_stop_step(self);
        });
    return;
  }
  case step::finish:
    finish(self);
    return;
  }
}

/// How much longer than flush_timeout a stop may take at most.
constexpr auto stop_grace = std::chrono::seconds{3};

void stop(supervisor_pointer self) {
  auto& st = self->state;
  if (st.stopping)
    return;
  st.stopping = true;
  st.cancel->store(true);
  st.deadline = self->clock().now() +
                std::chrono::duration_cast<caf::timespan>(st.config.flush_timeout) +
                stop_grace;
  logger()->info("pipeline: stopping: consumer first");
  run_stop_step(self);
}

pipeline_actor::behavior_type supervisor(supervisor_pointer self,
                                         pipeline_definition_ptr definition,
                                         pipeline_config config) {
  auto& st = self->state;
  st.config = std::move(config);
  auto& cfg = st.config;
  caf::error invalid = cfg.validate();
  if (!invalid)
    invalid = definition->validate();
  if (!invalid)
    invalid = check_feedback(*definition, cfg);
  if (invalid) {
    logger()->error("pipeline: cannot start: {}", render(invalid));
    self->quit(invalid);
    return {
        [](stop_atom) {},
        [](stats_atom) { return pipeline_stats{}; },
    };
  }
  auto& sys = self->system();
  producer_config pcfg;
  pcfg.properties = cfg.producer;
  pcfg.event_driven = cfg.event_driven;
  for (auto& s : definition->sinks())
    if (!s.default_topic.empty())
      pcfg.topics.push_back(s.default_topic);
  if (!cfg.dead_letter_topic.empty())
    pcfg.topics.push_back(cfg.dead_letter_topic);
  st.producer = sys.spawn(producer, pcfg);
  executor_config ecfg;
  ecfg.dead_letter_topic = cfg.dead_letter_topic;
  ecfg.on_deserialize_error = cfg.deserialize_policy();
  ecfg.on_node_error = cfg.on_node_error;
  ecfg.max_message_bytes = kafka::max_message_bytes(cfg.producer);
  ecfg.timer_catch_up = cfg.timer_catch_up;
  st.executor = sys.spawn(executor, definition, st.producer, ecfg);
  orchestrator_config ocfg;
  ocfg.watermark.batch_size = cfg.batch_size;
  ocfg.watermark.idle_timeout = cfg.idle_timeout;
  ocfg.releases_in_flight = cfg.releases_in_flight;
  ocfg.progress_interval = cfg.progress_interval;
  ocfg.listener = cfg.listener;
  st.orchestrator = sys.spawn(orchestrator, ocfg, st.executor);
  consumer_config ccfg;
  ccfg.properties = cfg.consumer;
  ccfg.batch_size = cfg.batch_size;
  ccfg.startup_timeout = cfg.startup_timeout;
  ccfg.commit_interval = cfg.commit_interval;
  ccfg.event_driven = cfg.event_driven;
  ccfg.cancel = st.cancel;
  for (auto& s : definition->sinks())
    if (!s.default_topic.empty())
      ccfg.output_topics.emplace_back(s.default_topic, fmt::format("sink '{}'", s.sink));
  if (!cfg.dead_letter_topic.empty())
    ccfg.output_topics.emplace_back(cfg.dead_letter_topic, "dead-letter");
  for (size_t i = 0; i < definition->sources().size(); ++i) {
    auto& s = definition->sources()[i];
    ccfg.topics.push_back({s.topic, static_cast<uint32_t>(i), s.start});
  }
  if (cfg.detached_consumer)
    st.consumer = sys.spawn<caf::detached>(consumer, ccfg, st.orchestrator, st.producer);
  else
    st.consumer = sys.spawn(consumer, ccfg, st.orchestrator, st.producer);
  // Linked: a component's exit reaches the supervisor, and the supervisor's
  // (whatever its reason) reaches every component.
  self->link_to(st.producer);
  self->link_to(st.executor);
  self->link_to(st.orchestrator);
  self->link_to(st.consumer);
  self->set_exit_handler([self](caf::exit_msg& em) {
    auto& st = self->state;
    // (anon_send_exit names the receiver itself as the source: an exit
    // message from outside may carry the supervisor's own address.)
    bool component = em.source == st.consumer || em.source == st.orchestrator ||
                     em.source == st.executor || em.source == st.producer;
    if (!component) {
      // Someone asked the pipeline to exit: stop it (an ordered shutdown
      // for a normal or user_shutdown request, at once otherwise).
      if (!em.reason || em.reason == caf::exit_reason::user_shutdown)
        stop(self);
      else
        fail(self, std::move(em.reason));
      return;
    }
    if (st.stopping) {
      // A component that fails during the stop decides the exit reason (a
      // consumer that gave up its start-up does not).
      if (em.reason && em.reason != caf::exit_reason::user_shutdown &&
          code_of(em.reason) != ec::stopped && !st.component_error)
        st.component_error = std::move(em.reason);
      return;
    }
    auto which = em.source == st.consumer       ? "consumer"
                 : em.source == st.orchestrator ? "orchestrator"
                 : em.source == st.executor     ? "executor"
                                                : "producer";
    if (em.reason)
      fail(self, std::move(em.reason));
    else
      fail(self,
           make_error(ec::stopped, fmt::format("the {} ended unexpectedly", which)));
  });
  return {
      [self](stop_atom) { stop(self); },
      [self](stats_atom) -> caf::result<pipeline_stats> {
        auto promise = self->make_response_promise<pipeline_stats>();
        collect_stats(self,
                      [promise](const pipeline_stats& s) mutable { promise.deliver(s); });
        return promise;
      },
  };
}

} // namespace

namespace {

// Sends `listener` the pipeline's figures every `interval`, while it lives.
caf::behavior reporter(caf::event_based_actor* self, pipeline_actor pipeline,
                       caf::actor listener, duration interval) {
  self->monitor(pipeline);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  self->delayed_send(self, interval, tick_atom::value);
  return {
      [=](tick_atom) {
        self->request(pipeline, std::chrono::seconds{5}, stats_atom::value)
            .then([=](pipeline_stats& s) { self->send(listener, std::move(s)); },
                  [](caf::error&) {
                    // The pipeline is stopping: its down message follows.
                  });
        self->delayed_send(self, interval, tick_atom::value);
      },
  };
}

} // namespace

pipeline_actor spawn_pipeline(caf::actor_system& sys, pipeline_definition_ptr definition,
                              pipeline_config config) {
  auto listener = config.listener;
  auto interval = config.stats_interval;
  auto pipeline = sys.spawn(supervisor, std::move(definition), std::move(config));
  if (listener && interval > duration::zero())
    sys.spawn(reporter, pipeline, listener, interval);
  return pipeline;
}

caf::error wait_for(caf::actor_system& sys, const pipeline_actor& pipeline) {
  caf::scoped_actor self{sys};
  self->monitor(pipeline);
  caf::error result;
  self->receive([&](caf::down_msg& dm) { result = std::move(dm.reason); });
  return result;
}

} // namespace castor
