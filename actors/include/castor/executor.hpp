// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "castor/actors.hpp"
#include "castor/pipeline.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace castor {

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

  /// Sends `records` to the producer; `done` runs on its answer.
  template <class F>
  void produce(executor_actor::stateful_pointer<executor_state> self,
               std::vector<producer_record>&& records, F done);

  /// Live: wakes the executor when the DAG's next timer is due.
  void arm_timer(executor_actor::stateful_pointer<executor_state> self);

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
  pipeline_stats stats;
};

/// The DAG executor: runs `definition`'s DAG on released messages and hands
/// the updated sinks' records to `producer`.
executor_actor::behavior_type
executor(executor_actor::stateful_pointer<executor_state> self,
         pipeline_definition_ptr definition, producer_actor producer);

} // namespace castor
