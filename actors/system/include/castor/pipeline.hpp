// SPDX-License-Identifier: Apache-2.0
#pragma once

// A pipeline: a DAG bound to Kafka topics, run by four actors. This is the
// entry point for embedders:
//
//   castor::add_message_types(cfg);                 // before the actor system
//   auto def = std::make_shared<castor::pipeline_definition>(std::move(dag));
//   def->source(words, "words", castor::serde::words(),
//               castor::start_policy::earliest());
//   def->sink(counts, serialize_counts, "counts");
//   auto pipeline = castor::spawn_pipeline(sys, def, config);
//   ...
//   caf::anon_send(pipeline, castor::stop_atom::value);

#include "castor/actors.hpp"
#include "castor/cycles.hpp"
#include "castor/dag.hpp"
#include "castor/defaults.hpp"
#include "castor/error.hpp"
#include "castor/kafka/config.hpp"
#include "castor/serde.hpp"
#include "castor/start_policy.hpp"
#include "castor/stop_policy.hpp"

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace castor {

/// A DAG source fed by a Kafka topic.
struct source_binding {
  /// The DAG source's name.
  std::string source;
  std::string topic;
  start_policy start;
  /// Deserializes a cycle's messages and sets the source.
  std::function<void(dag&, std::span<const message_view>)> feed;
  /// Deserializes messages and drops the result: finds which messages a
  /// deserializer rejects when it did not say.
  std::function<void(std::span<const message_view>)> check;
};

/// What the executor does when a stage fails.
enum class error_policy : uint8_t {
  /// Stop the pipeline with an error naming what failed and where.
  stop,
  /// Send the input messages concerned to the dead-letter topic and go on.
  dead_letter,
};

/// "stop" or "dead_letter".
const char* to_string(error_policy policy) noexcept;

/// Parses "stop" or "dead_letter".
caf::expected<error_policy> parse_error_policy(std::string_view text);

/// A DAG sink whose updates become producer records.
struct sink_binding {
  /// The DAG sink's name.
  std::string sink;
  /// The topic of records whose serializer left the topic empty.
  std::string default_topic;
  /// Appends the records for the sink's value.
  std::function<void(const node_handle&, std::vector<producer_record>&)> serialize;
};

/// A DAG with its Kafka bindings. Build it, then hand it to `spawn_pipeline`,
/// which runs the DAG on the executor actor: do not touch the DAG afterwards.
class pipeline_definition {
public:
  explicit pipeline_definition(std::unique_ptr<castor::dag> graph);

  castor::dag& graph() noexcept { return *dag_; }

  /// Feeds `src` from `topic`, read from where `start` says.
  template <class T>
  pipeline_definition& source(const source_ref<T>& src, std::string topic,
                              deserializer<T> deserialize,
                              start_policy start = start_policy::latest()) {
    auto node = src.get();
    sources_.push_back(source_binding{
        src.name(), std::move(topic), std::move(start),
        [node, deserialize](dag& g, std::span<const message_view> messages) {
          g.set(source_ref<T>{static_cast<detail::source_node<T>*>(node)},
                deserialize(messages));
        },
        [deserialize](std::span<const message_view> messages) {
          [[maybe_unused]] auto value = deserialize(messages);
        }});
    return *this;
  }

  /// Produces the records `serialize` makes of `snk`'s updates; records with
  /// no topic go to `default_topic`.
  template <class T>
  pipeline_definition& sink(const sink_ref<T>& snk, serializer<T> serialize,
                            std::string default_topic = {}) {
    sinks_.push_back(
        sink_binding{snk.name(), std::move(default_topic),
                     [serialize = std::move(serialize)](
                         const node_handle& h, std::vector<producer_record>& out) {
                       serialize(h.value_as<T>(), out);
                     }});
    return *this;
  }

  /// Checks the bindings: at least one source, every topic bound once, every
  /// bound node a source or sink of this DAG.
  caf::error validate() const;

  const std::vector<source_binding>& sources() const noexcept { return sources_; }
  const std::vector<sink_binding>& sinks() const noexcept { return sinks_; }

private:
  std::unique_ptr<castor::dag> dag_;
  std::vector<source_binding> sources_;
  std::vector<sink_binding> sinks_;
};

using pipeline_definition_ptr = std::shared_ptr<pipeline_definition>;

/// Which partitions a pipeline reads (engine.assignment).
enum class assignment_mode : uint8_t {
  /// Every partition of every source topic (one instance does all the work).
  manual,
  /// What the consumer group (`group.id`) assigns: several instances with
  /// the same group share the partitions, Kafka balancing them.
  group,
};

/// "manual" or "group".
const char* to_string(assignment_mode mode) noexcept;

/// How a pipeline runs. Defaults in one place; `validate()` before use.
struct pipeline_config {
  /// librdkafka consumer properties, passed through untouched
  /// (`bootstrap.servers`, `group.id`, security settings, ...). castor sets
  /// `enable.partition.eof=true`, `enable.auto.commit=false` and
  /// `enable.auto.offset.store=false` itself; without `group.id` it uses a
  /// private one and commits nothing.
  kafka::properties consumer;
  /// librdkafka producer properties, passed through untouched.
  kafka::properties producer;
  /// Most messages per batch and per cycle; the hold cap is 5x this.
  size_t batch_size = defaults::batch_size;
  /// The orchestrator's hold cap when not 0 (else batch_size * 5): for
  /// experiments and benchmarks, not in the service's configuration.
  size_t hold_limit = 0;
  /// Bytes the consumer side may hold: half of it is librdkafka's prefetch,
  /// shared among the source partitions (see kafka::budget_properties;
  /// explicit queued.* and fetch properties win), a quarter what the
  /// orchestrator holds and has in flight (hold_unit_bytes); 0: castor's
  /// fixed per-partition defaults, whatever the partition count, and a hold
  /// bounded in messages only.
  size_t memory_budget = defaults::memory_budget;
  /// The orchestrator's unit of the hold in bytes when set (else derived
  /// from memory_budget; 0: messages only): for experiments and benchmarks,
  /// not in the service's configuration.
  std::optional<size_t> hold_unit_bytes;
  /// A partition that is not caught up and silent this long stops holding
  /// the watermark back.
  duration idle_timeout = defaults::idle_timeout;
  /// Timeout of each broker query at start-up.
  duration startup_timeout = defaults::startup_timeout;
  /// How long a stop waits for the producer to deliver what it holds.
  duration flush_timeout = defaults::flush_timeout;
  /// How often replay progress is logged (zero: never).
  duration progress_interval = defaults::progress_interval;
  /// Releases the orchestrator may have in flight to the executor.
  size_t releases_in_flight = defaults::releases_in_flight;
  /// How often progress is committed, with a consumer `group.id` (zero:
  /// only at a clean stop). A partition's offset is committed only past
  /// messages whose cycle completed and whose records were all delivered.
  duration commit_interval = defaults::commit_interval;
  /// Where dead letters go (empty: none). A dead letter is the original
  /// message (key, value, headers, timestamp) plus headers
  /// castor.dlq.{topic,partition,offset,timestamp,error,stage}.
  std::string dead_letter_topic;
  /// A message a deserializer rejects. Default (unset): dead_letter when a
  /// dead-letter topic is set, else stop; see `deserialize_policy()`.
  std::optional<error_policy> on_deserialize_error;
  /// A node or a sink's serializer that throws: stop, or dead-letter the
  /// failed cycle's input messages and go on (state nodes that ran in the
  /// failed cycle keep their new values: see docs/dag.md).
  error_policy on_node_error = error_policy::stop;
  /// Timer cycles without input that run in a row across a gap in the data
  /// before the periods it misses are skipped: the DAG's time then jumps to
  /// the next input, where due timers fire once (0: never skip). A minute
  /// timer over a weekend without data fires 2880 times; one far-future
  /// timestamp would otherwise fire it for every minute up to it.
  uint64_t timer_catch_up = defaults::timer_catch_up;
  /// How cycles are formed: by timestamp (the default: one cycle per
  /// distinct timestamp, split at batch_size), by a bucket of event time, or
  /// by release ("batch", not deterministic). See docs/pipeline.md.
  cycle_policy cycles;
  /// Where the replay ends (a backtest): never (replay, then live, until a
  /// stop), at the end offsets recorded at start-up, or at a time (nothing
  /// at or after it is released). A bounded pipeline, once every partition
  /// is finished, runs its last cycles (timers due before the stop fire,
  /// none after), delivers, commits and exits normally by itself.
  stop_policy stop;
  /// During replay, event time is paced against wall time at this rate (the
  /// cycle at time t runs no earlier than start + (t - t0) / replay_speed);
  /// 0: as fast as possible. Live is unchanged.
  double replay_speed = 0;
  /// Which partitions this instance reads: all of them, or what the
  /// consumer group assigns (which needs `group.id`; each instance then
  /// replays its partitions in timestamp order, and a rebalance hands
  /// partitions over with their delivered offsets committed). See
  /// docs/operations.md, "Running several instances".
  assignment_mode assignment = assignment_mode::manual;
  /// Called once as the pipeline exits (after a clean stop, a bounded
  /// replay's end, or an error) with its last figures and its exit reason
  /// (none for a clean stop), on the supervisor's thread: for run reports.
  std::function<void(const pipeline_stats&, const caf::error&)> on_exit;
  /// Event-driven wake-ups from librdkafka (off only in deterministic tests,
  /// which send wake-ups themselves).
  bool event_driven = true;
  /// Spawn the consumer on its own thread (its start-up queries block).
  bool detached_consumer = true;
  /// Receives `live_atom` when the pipeline switches to live and everything
  /// replayed has been released to the DAG (a stop then loses nothing of
  /// the replay), and with
  /// `stats_interval` the pipeline's figures (`pipeline_stats`) that often
  /// (optional).
  caf::actor listener;
  /// How often `listener` gets the figures (zero: never).
  duration stats_interval{0};

  caf::error validate() const;

  /// The policy for rejected messages, with its default applied.
  error_policy deserialize_policy() const noexcept {
    return on_deserialize_error.value_or(
        dead_letter_topic.empty() ? error_policy::stop : error_policy::dead_letter);
  }
};

/// Checks a definition and a configuration together: each one's own rules,
/// and that no sink or dead-letter topic is also a source topic.
caf::error validate(const pipeline_definition& definition, const pipeline_config& config);

/// "<what> '<topic>' is also a source topic: castor would read its own
/// output again, forever" (for the service's own configuration errors).
std::string feedback_message(std::string_view what, std::string_view topic);

/// Why `transactional.id` is refused.
std::string transactions_message();

/// Starts a pipeline: spawns the producer, executor, orchestrator and
/// consumer under a supervising actor, which it returns. The supervisor
/// exits normally after a `stop_atom` and an ordered shutdown, or with the
/// error that stopped the pipeline (bad config, unknown topic, unreachable
/// broker, node failure, ...).
pipeline_actor spawn_pipeline(caf::actor_system& sys, pipeline_definition_ptr definition,
                              pipeline_config config);

/// Blocks until `pipeline` has exited and returns its exit reason (none for
/// a clean stop). For `main`s and tests; actors monitor the pipeline instead.
caf::error wait_for(caf::actor_system& sys, const pipeline_actor& pipeline);

} // namespace castor
