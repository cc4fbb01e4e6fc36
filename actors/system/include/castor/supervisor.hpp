// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/actors.hpp"
#include "castor/defaults.hpp"

#include <caf/actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <atomic>
#include <functional>
#include <memory>

namespace castor {

/// The four actors of a pipeline, spawned (spawn_pipeline does it).
struct pipeline_components {
  producer_actor producer;
  executor_actor executor;
  orchestrator_actor orchestrator;
  consumer_actor consumer;
};

struct supervisor_config {
  /// How long the stop's flush may wait for deliveries; the whole stop ends
  /// within this plus `stop_grace`.
  duration flush_timeout = defaults::flush_timeout;
  duration stop_grace = defaults::stop_grace;
  /// Set when the pipeline stops: the consumer's start-up gives up.
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  /// A bounded replay: the pipeline stops by itself once the orchestrator
  /// says every partition reached the stop.
  bool bounded = false;
  /// Called once as the pipeline exits, with its last figures and exit
  /// reason (pipeline_config::on_exit).
  std::function<void(const pipeline_stats&, const caf::error&)> on_exit;
};

struct supervisor_state {
  static inline const char* name = "castor.pipeline";

  using pointer = pipeline_actor::stateful_pointer<supervisor_state>;

  // Not an aggregate: CAF would try to build the state from the actor pointer.
  supervisor_state() = default;

  /// The steps of an ordered stop, in order.
  enum class step : uint8_t {
    drain_consumer,
    drain_orchestrator,
    drain_executor,
    flush,
    commit,
    finish
  };

  pipeline_components components;
  supervisor_config config;
  bool stopping = false;
  step next = step::drain_consumer;
  /// Every step of the stop ends by then, answered or not.
  caf::actor_clock::time_point deadline;
  /// Records the flush reported not delivered.
  uint64_t undelivered = 0;
  /// The producer did not answer the flush in time.
  bool flush_unanswered = false;
  caf::error commit_error;
  /// The first error a component exited with during the stop.
  caf::error component_error;
};

/// Supervises a pipeline's components (linked to it): turns a component's
/// failure into the pipeline's exit reason, runs the ordered stop on
/// `stop_atom` (or an exit request), and answers `stats_atom` with every
/// component's figures merged. The stop goes step by step (the consumer stops
/// reading, the orchestrator stops releasing, the executor finishes its
/// cycles, the producer flushes, the consumer makes the final commit), each
/// step bounded by one deadline, and a step that gets no answer goes on to
/// the next: a stop never hangs on a stuck component.
pipeline_actor::behavior_type supervisor(supervisor_state::pointer self,
                                         pipeline_components components,
                                         supervisor_config config);

/// A pipeline that could not start: it exits at once with `reason`.
pipeline_actor::behavior_type failed_pipeline(pipeline_actor::pointer self,
                                              caf::error reason);

/// Sends `listener` the pipeline's figures every `interval`, while it lives.
caf::behavior stats_reporter(caf::event_based_actor* self, pipeline_actor pipeline,
                             caf::actor listener, duration interval);

} // namespace castor
