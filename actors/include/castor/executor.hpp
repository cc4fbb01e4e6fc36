// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/actors.hpp"
#include "castor/pipeline.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace castor {

/// The executor's error policies (resolved from pipeline_config).
struct executor_config {
  /// Where dead letters go (needed by a dead_letter policy).
  std::string dead_letter_topic;
  error_policy on_deserialize_error = error_policy::stop;
  error_policy on_node_error = error_policy::stop;
};

struct executor_state {
  static inline const char* name = "castor.executor";

  // Not an aggregate: CAF would try to build the state from the actor pointer.
  executor_state() = default;

  /// Runs the cycles of a release: in replay, a cycle at each DAG timer
  /// that falls inside it (with the messages up to that time) and one at the
  /// watermark; when live, one at the wall clock.
  caf::error run_release(release_batch& batch, std::vector<producer_record>& out);

  /// Feeds `messages` to their sources, executes the DAG at `t` and
  /// serializes the updated sinks into `out`.
  caf::error run_cycle(std::span<const consumed_message> messages, timestamp t,
                       std::vector<producer_record>& out);

  /// Sets source `s` from its messages of this cycle; a rejected message is
  /// dead-lettered (and the rest fed again) or stops the pipeline.
  caf::error feed_source(uint32_t s, std::vector<producer_record>& out);

  /// Dead-letters every input message of the failed cycle.
  void dead_letter_cycle(const std::string& stage, const std::string& error,
                         std::vector<producer_record>& out);

  /// Appends the dead letter of `m` to `out`.
  void dead_letter(const message_view& m, const std::string& stage,
                   const std::string& error, std::vector<producer_record>& out);

  /// Sends `records` and the positions reached to the producer; `done`
  /// runs on its answer.
  template <class F>
  void produce(executor_actor::stateful_pointer<executor_state> self,
               std::vector<producer_record>&& records,
               std::vector<partition_position>&& positions, F done);

  /// The next offset of every partition in `messages`.
  std::vector<partition_position>
  positions_of(std::span<const consumed_message> messages);

  /// Live: wakes the executor when the DAG's next timer is due.
  void arm_timer(executor_actor::stateful_pointer<executor_state> self);

  executor_config config;
  pipeline_definition_ptr definition;
  producer_actor producer;
  partition_table_ptr table;
  std::vector<std::vector<message_view>> per_source;
  std::vector<uint32_t> touched;
  std::unordered_map<const detail::node_base*, size_t> sink_index;
  size_t batches_in_flight = 0;
  std::optional<caf::typed_response_promise<ack_atom>> drained;
  bool live = false;
  std::optional<timestamp> armed;
  /// Scratch for positions_of: next offset by pid (-1: not in the release).
  std::vector<int64_t> next_offsets;
  pipeline_stats stats;
};

/// The DAG executor: runs `definition`'s DAG on released messages and hands
/// the updated sinks' records to `producer`.
executor_actor::behavior_type
executor(executor_actor::stateful_pointer<executor_state> self,
         pipeline_definition_ptr definition, producer_actor producer,
         executor_config config);

} // namespace castor
