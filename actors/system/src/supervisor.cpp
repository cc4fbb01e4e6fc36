// SPDX-License-Identifier: Apache-2.0
#include "castor/supervisor.hpp"

#include "castor/error.hpp"
#include "castor/logger.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/system_messages.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace castor {

namespace {

// Asks every live component for its counters and merges them.
template <class F>
void collect_stats(supervisor_state::pointer self, F done) {
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
    auto timeout = st.stopping ? caf::timespan{std::chrono::milliseconds{500}}
                               : caf::timespan{std::chrono::seconds{5}};
    self->request(target, timeout, stats_atom::value)
        .then([one](pipeline_stats& s) mutable { one(&s); },
              [one](caf::error&) mutable { one(nullptr); });
  };
  ask(st.components.consumer);
  ask(st.components.orchestrator);
  ask(st.components.executor);
  ask(st.components.producer);
}

// Ends every component with `reason` (they are linked to the supervisor).
void exit_components(supervisor_state::pointer self, caf::error reason) {
  auto& c = self->state.components;
  self->send_exit(c.consumer, reason);
  self->send_exit(c.orchestrator, reason);
  self->send_exit(c.executor, reason);
  self->send_exit(c.producer, reason);
}

void fail(supervisor_state::pointer self, caf::error err) {
  auto& st = self->state;
  if (st.stopping)
    return;
  st.stopping = true;
  st.config.cancel->store(true);
  logger()->error("pipeline: stops on error: {}", render(err));
  if (!st.config.on_exit) {
    exit_components(self, caf::exit_reason::user_shutdown);
    self->quit(std::move(err));
    return;
  }
  // The figures for the report first (short timeouts: stopping), then out.
  collect_stats(self, [self, err](const pipeline_stats& s) {
    auto& st = self->state;
    if (auto report = std::exchange(st.config.on_exit, nullptr))
      report(s, err);
    exit_components(self, caf::exit_reason::user_shutdown);
    self->quit(err);
  });
}

// The last step of a clean stop: counters, a summary line, then exit.
void finish(supervisor_state::pointer self) {
  collect_stats(self, [self](const pipeline_stats& s) {
    auto& st = self->state;
    // Messages waiting for the rest of their cycle's timestamp or bucket
    // are not run (a part of a cycle would not be the replay's): they are
    // not committed and are read again at the next start.
    auto waiting =
        s.waiting > 0
            ? fmt::format(" ({} waiting for the rest of their cycle, not run)", s.waiting)
            : std::string{};
    logger()->info("pipeline: stopped: {} consumed, {} released{}, {} cycles, {} "
                   "produced, {} delivered, {} undelivered, {} delivery errors, {} "
                   "dead-lettered, {} commits",
                   s.consumed, s.released, waiting, s.cycles, s.produced, s.delivered,
                   st.undelivered, s.delivery_errors, s.dead_lettered, s.commits);
    exit_components(self, caf::exit_reason::user_shutdown);
    caf::error reason;
    if (st.component_error)
      reason = st.component_error;
    else if (st.flush_unanswered)
      reason = make_error(ec::produce_failed,
                          "the producer did not answer the flush in time: records "
                          "may not have been delivered");
    else if (st.undelivered > 0)
      reason = make_error(ec::produce_failed,
                          fmt::format("{} record(s) not delivered within the flush "
                                      "timeout",
                                      st.undelivered));
    else if (st.commit_error)
      reason = st.commit_error;
    if (auto report = std::exchange(st.config.on_exit, nullptr))
      report(s, reason);
    self->quit(reason);
  });
}

// Time left until the stop's deadline (at least a millisecond).
caf::timespan time_left(supervisor_state::pointer self) {
  auto left = self->state.deadline - self->clock().now();
  return std::max(std::chrono::duration_cast<caf::timespan>(left),
                  caf::timespan{std::chrono::milliseconds{1}});
}

void run_stop_step(supervisor_state::pointer self);

// A step that got no answer goes on to the next one: a stop never hangs on
// a component that is stuck (a full producer queue with the broker gone).
// A component that is gone (it exited: its reason is recorded) is skipped.
void step_failed(supervisor_state::pointer self, const char* what,
                 const caf::error& err) {
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
void run_stop_step(supervisor_state::pointer self) {
  auto& st = self->state;
  using step = supervisor_state::step;
  auto current = st.next;
  if (current != step::finish)
    st.next = static_cast<step>(static_cast<uint8_t>(current) + 1);
  auto go_on = [self](ack_atom) { run_stop_step(self); };
  switch (current) {
  case step::drain_consumer:
    self->request(st.components.consumer, time_left(self), drain_atom::value)
        .then(go_on, [self](caf::error& e) { step_failed(self, "consumer", e); });
    return;
  case step::drain_orchestrator:
    self->request(st.components.orchestrator, time_left(self), drain_atom::value)
        .then(go_on, [self](caf::error& e) { step_failed(self, "orchestrator", e); });
    return;
  case step::drain_executor:
    self->request(st.components.executor, time_left(self), drain_atom::value)
        .then(go_on, [self](caf::error& e) { step_failed(self, "executor", e); });
    return;
  case step::flush: {
    // The flush may take flush_timeout; the commit after it keeps a second.
    auto flush =
        std::min(std::chrono::duration_cast<caf::timespan>(st.config.flush_timeout),
                 time_left(self) - std::chrono::seconds{1});
    flush = std::max(flush, caf::timespan{std::chrono::milliseconds{1}});
    self->request(st.components.producer, time_left(self), flush_atom::value, flush)
        .then(
            [self](uint64_t undelivered) {
              self->state.undelivered = undelivered;
              run_stop_step(self);
            },
            [self](caf::error& e) {
              // Whatever was not delivered is not committed either.
              self->state.flush_unanswered = true;
              step_failed(self, "producer", e);
            });
    return;
  }
  case step::commit: {
    auto left = time_left(self);
    auto wait = std::max(left - std::chrono::milliseconds{100},
                         caf::timespan{std::chrono::milliseconds{1}});
    self->request(st.components.consumer, left, commit_atom::value, wait)
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

void stop(supervisor_state::pointer self) {
  auto& st = self->state;
  if (st.stopping)
    return;
  st.stopping = true;
  st.config.cancel->store(true);
  st.deadline = self->clock().now() + std::chrono::duration_cast<caf::timespan>(
                                          st.config.flush_timeout + st.config.stop_grace);
  logger()->info("pipeline: stopping: consumer first");
  run_stop_step(self);
}

} // namespace

pipeline_actor::behavior_type supervisor(supervisor_state::pointer self,
                                         pipeline_components components,
                                         supervisor_config config) {
  auto& st = self->state;
  st.components = std::move(components);
  st.config = std::move(config);
  // Linked: a component's exit reaches the supervisor, and the supervisor's
  // (whatever its reason) reaches every component.
  self->link_to(st.components.producer);
  self->link_to(st.components.executor);
  self->link_to(st.components.orchestrator);
  self->link_to(st.components.consumer);
  // A bounded replay ends by itself: the orchestrator answers once every
  // partition reached the stop and the last cycles ran.
  if (st.config.bounded)
    self->request(st.components.orchestrator, caf::infinite, finish_atom::value)
        .then(
            [self](ack_atom) {
              if (self->state.stopping)
                return;
              logger()->info("pipeline: the bounded replay is complete: stopping");
              stop(self);
            },
            [](caf::error&) {
              // The orchestrator exited: its exit message decides.
            });
  self->set_exit_handler([self](caf::exit_msg& em) {
    auto& st = self->state;
    // (anon_send_exit names the receiver itself as the source: an exit
    // message from outside may carry the supervisor's own address.)
    bool component =
        em.source == st.components.consumer || em.source == st.components.orchestrator ||
        em.source == st.components.executor || em.source == st.components.producer;
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
    auto which = em.source == st.components.consumer       ? "consumer"
                 : em.source == st.components.orchestrator ? "orchestrator"
                 : em.source == st.components.executor     ? "executor"
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

pipeline_actor::behavior_type failed_pipeline(pipeline_actor::pointer self,
                                              caf::error reason) {
  logger()->error("pipeline: cannot start: {}", render(reason));
  self->quit(std::move(reason));
  return {
      [](stop_atom) {},
      [](stats_atom) { return pipeline_stats{}; },
  };
}

caf::behavior stats_reporter(caf::event_based_actor* self, pipeline_actor pipeline,
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

} // namespace castor
