// SPDX-License-Identifier: Apache-2.0
#include "castor/pipeline.hpp"

#include "castor/consumer.hpp"
#include "castor/executor.hpp"
#include "castor/logger.hpp"
#include "castor/orchestrator.hpp"
#include "castor/producer.hpp"
#include "castor/supervisor.hpp"

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

const char* to_string(assignment_mode mode) noexcept {
  return mode == assignment_mode::group ? "group" : "manual";
}

caf::error pipeline_config::validate() const {
  if (assignment == assignment_mode::group && !consumer.contains("group.id"))
    return make_error(ec::invalid_config,
                      "group assignment needs a consumer group: set group.id "
                      "(kafka.group_id)");
  if (assignment == assignment_mode::group && stop.bounded())
    return make_error(ec::invalid_config,
                      "a bounded replay (engine.stop) reads every partition itself: it "
                      "cannot take its partitions from a consumer group "
                      "(engine.assignment = group)");
  if (dead_letter_topic.empty() && (on_deserialize_error == error_policy::dead_letter ||
                                    on_node_error == error_policy::dead_letter))
    return make_error(ec::invalid_config,
                      "the dead_letter error policy needs a dead_letter_topic");
  if (commit_interval < duration::zero())
    return make_error(ec::invalid_config, "commit_interval must not be negative");
  if (batch_size == 0 || batch_size > defaults::max_batch_size)
    return make_error(ec::invalid_config,
                      fmt::format("batch_size must be from 1 to {}, "
                                  "not {}",
                                  defaults::max_batch_size, batch_size));
  if (producer.contains("transactional.id"))
    return make_error(ec::invalid_config,
                      "producer property transactional.id: " + transactions_message());
  if (releases_in_flight == 0)
    return make_error(ec::invalid_config, "releases_in_flight must be at least 1");
  if (cycles.what == cycle_policy::kind::bucket && cycles.bucket <= duration::zero())
    return make_error(ec::invalid_config, "cycles by bucket need a positive duration");
  if (!(replay_speed >= 0) || replay_speed > 1e9)
    return make_error(ec::invalid_config,
                      fmt::format("replay_speed must be 0 (as fast as possible) or a "
                                  "positive rate up to 1e9, not {}",
                                  replay_speed));
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

std::string feedback_message(std::string_view what, std::string_view topic) {
  return fmt::format("{} '{}' is also a source topic: castor would read its own output "
                     "again, forever",
                     what, topic);
}

std::string transactions_message() {
  return "castor does not support transactions yet (its producer is idempotent; "
         "delivery is at-least-once)";
}

caf::error validate(const pipeline_definition& def, const pipeline_config& cfg) {
  if (auto err = cfg.validate())
    return err;
  if (auto err = def.validate())
    return err;
  // A topic castor writes and reads is an endless feedback loop.
  std::set<std::string> read;
  for (auto& s : def.sources())
    read.insert(s.topic);
  for (auto& s : def.sinks())
    if (read.contains(s.default_topic))
      return make_error(ec::invalid_config,
                        feedback_message(fmt::format("sink '{}' writes to topic", s.sink),
                                         s.default_topic));
  if (read.contains(cfg.dead_letter_topic))
    return make_error(ec::invalid_config,
                      feedback_message("the dead-letter topic", cfg.dead_letter_topic) +
                          " (dead letters of dead letters)");
  return {};
}

pipeline_actor spawn_pipeline(caf::actor_system& sys, pipeline_definition_ptr definition,
                              pipeline_config cfg) {
  auto refuse = [&](caf::error reason) {
    if (cfg.on_exit)
      cfg.on_exit(pipeline_stats{}, reason);
    return sys.spawn(failed_pipeline, std::move(reason));
  };
  if (auto invalid = validate(*definition, cfg))
    return refuse(std::move(invalid));
  supervisor_config scfg;
  scfg.flush_timeout = cfg.flush_timeout;
  scfg.bounded = cfg.stop.bounded();
  scfg.on_exit = cfg.on_exit;
  // A stop time is resolved once, now: the orchestrator and the executor
  // share it.
  auto stop = cfg.stop;
  std::optional<timestamp> stop_time;
  if (stop.what == stop_policy::kind::at) {
    auto t = stop.resolve(wall_clock_now());
    if (!t)
      return refuse(to_error(t.error()));
    stop_time = *t;
    stop = stop_policy::at(*t);
  }
  pipeline_components c;
  producer_config pcfg;
  pcfg.properties = cfg.producer;
  for (auto& [key, value] :
       kafka::producer_budget_properties(cfg.memory_budget, cfg.producer))
    pcfg.properties[key] = value;
  pcfg.event_driven = cfg.event_driven;
  for (auto& s : definition->sinks())
    if (!s.default_topic.empty())
      pcfg.topics.push_back(s.default_topic);
  if (!cfg.dead_letter_topic.empty())
    pcfg.topics.push_back(cfg.dead_letter_topic);
  c.producer = sys.spawn(producer, pcfg);
  orchestrator_config ocfg;
  ocfg.watermark.batch_size = cfg.batch_size;
  ocfg.watermark.hold_limit = cfg.hold_limit;
  ocfg.watermark.idle_timeout = cfg.idle_timeout;
  ocfg.watermark.group = cfg.assignment == assignment_mode::group;
  ocfg.releases_in_flight = cfg.releases_in_flight;
  ocfg.progress_interval = cfg.progress_interval;
  ocfg.listener = cfg.listener;
  ocfg.stop = stop;
  ocfg.replay_speed = cfg.replay_speed;
  // The hold's unit in bytes: the orchestrator, the consumer and the
  // executor (a timestamp's cycles) count in it.
  auto unit_bytes = cfg.hold_unit_bytes.value_or(
      hold_unit_bytes(cfg.memory_budget, ocfg.watermark, cfg.releases_in_flight));
  ocfg.watermark.unit_bytes = unit_bytes;
  executor_config ecfg;
  ecfg.dead_letter_topic = cfg.dead_letter_topic;
  ecfg.on_deserialize_error = cfg.deserialize_policy();
  ecfg.on_node_error = cfg.on_node_error;
  ecfg.max_message_bytes = kafka::max_message_bytes(cfg.producer);
  ecfg.timer_catch_up = cfg.timer_catch_up;
  ecfg.cycles = cfg.cycles;
  ecfg.batch_size = cfg.batch_size;
  ecfg.unit_bytes = unit_bytes;
  ecfg.stop = stop_time;
  c.executor = sys.spawn(executor, definition, c.producer, ecfg);
  c.orchestrator = sys.spawn(orchestrator, ocfg, c.executor);
  consumer_config ccfg;
  ccfg.properties = cfg.consumer;
  ccfg.batch_size = cfg.batch_size;
  ccfg.startup_timeout = cfg.startup_timeout;
  ccfg.commit_interval = cfg.commit_interval;
  ccfg.event_driven = cfg.event_driven;
  ccfg.memory_budget = cfg.memory_budget;
  ccfg.unit_bytes = unit_bytes;
  ccfg.group = cfg.assignment == assignment_mode::group;
  ccfg.cancel = scfg.cancel;
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
    c.consumer = sys.spawn<caf::detached>(consumer, ccfg, c.orchestrator, c.producer);
  else
    c.consumer = sys.spawn(consumer, ccfg, c.orchestrator, c.producer);
  auto pipeline = sys.spawn(supervisor, std::move(c), std::move(scfg));
  if (cfg.listener && cfg.stats_interval > duration::zero())
    sys.spawn(stats_reporter, pipeline, cfg.listener, cfg.stats_interval);
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
