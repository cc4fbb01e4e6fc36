// SPDX-License-Identifier: Apache-2.0
#pragma once

// The typed interfaces of castor's actors (docs/architecture.md):
//
//   consumer ──batches──▶ orchestrator ──releases──▶ executor ──records──▶ producer
//       ▲                     │ pause / resume            ▲                  │
//       ├─────────────────────┘        acks (flow control) └──────────────────┤
//       └──────────────── committable offsets (at-least-once) ◀──────────────┘
//
// Every data message is a request whose answer is the sender's credit: the
// consumer has one batch in flight, the orchestrator and the executor a few,
// so no mailbox grows without bound.

#include "castor/protocol.hpp"

#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <vector>

namespace castor {

/// One librdkafka producer writing every record of the pipeline.
using producer_actor = caf::typed_actor<
    // Produces one cycle's records; answers once all are in librdkafka's queue
    // (a full queue delays the answer: backpressure, never a drop).
    caf::replies_to<record_batch_ptr>::with<ack_atom>,
    // librdkafka has delivery reports to serve.
    caf::reacts_to<wake_atom>,
    // Retries records that met a full queue.
    caf::reacts_to<retry_atom>,
    // Waits until every record is delivered or the timeout passed; answers
    // with the number of records not delivered.
    caf::replies_to<flush_atom, caf::timespan>::with<uint64_t>,
    // The committable next offset of every partition (pid; -1: none yet):
    // each one's messages ran in completed cycles whose records were all
    // acknowledged.
    caf::replies_to<commit_atom>::with<std::vector<int64_t>>,
    // The same, once the given partitions' positions are committable (every
    // record before them delivered): a revocation's commit.
    caf::replies_to<commit_atom,
                    std::vector<partition_position>>::with<std::vector<int64_t>>,
    // Counters (produced, delivered, delivery_errors).
    caf::replies_to<stats_atom>::with<pipeline_stats>>;

/// Runs the DAG: deserializes released messages into sources, executes
/// cycles, serializes updated sinks.
using executor_actor = caf::typed_actor<
    // The partition table, before any release.
    caf::reacts_to<start_atom, partition_table_ptr>,
    // Runs the cycles of a release; answers once their records are with the
    // producer.
    caf::replies_to<release_batch_ptr>::with<ack_atom>,
    // A DAG timer may be due (live mode, wall clock).
    caf::reacts_to<timer_atom>,
    // Goes on with releases left from its last turn (sent to itself).
    caf::reacts_to<run_atom>,
    // Answers once no record batch is in flight to the producer.
    caf::replies_to<drain_atom>::with<ack_atom>,
    // The group revoked these partitions (pids): their messages still
    // waiting for a cycle are dropped; answers once every release before
    // this message ran and its records are with the producer, with the
    // positions the partitions reached.
    caf::replies_to<revoke_atom, std::vector<uint32_t>>::with<revocation>,
    // Counters (cycles).
    caf::replies_to<stats_atom>::with<pipeline_stats>>;

/// One librdkafka consumer reading every partition of every source topic.
using consumer_actor = caf::typed_actor<
    // librdkafka's consumer queue became non-empty.
    caf::reacts_to<wake_atom>,
    // Checks whether a consumer that read nothing is starved by librdkafka's
    // fetcher (sent to itself, with the messages read until then).
    caf::reacts_to<wake_atom, uint64_t>,
    // Pauses these partitions (pids).
    caf::reacts_to<pause_atom, std::vector<uint32_t>>,
    // Resumes these partitions (pids).
    caf::reacts_to<resume_atom, std::vector<uint32_t>>,
    // Commits what the producer reports committable (the commit timer).
    caf::reacts_to<commit_atom>,
    // The final commit of a clean stop: answers once the brokers accepted
    // it, or with the error.
    caf::replies_to<commit_atom, caf::timespan>::with<ack_atom>,
    // Stops reading (the first step of a clean stop); keeps committing.
    caf::replies_to<drain_atom>::with<ack_atom>,
    // A consumer group: serves librdkafka's consumer queue (rebalances,
    // the group's liveness) while nothing else makes the consumer read.
    caf::reacts_to<tick_atom>,
    // Retries a hand-over's commit (sent to itself).
    caf::reacts_to<revoke_atom, uint64_t>,
    // Counters (commits).
    caf::replies_to<stats_atom>::with<pipeline_stats>>;

/// Holds messages that are ahead of the low watermark and releases them in
/// timestamp order; decides pauses.
using orchestrator_actor = caf::typed_actor<
    // The partition table and the consumer to send pauses to.
    caf::reacts_to<start_atom, partition_table_ptr, consumer_actor>,
    // Takes a batch; the answer is the consumer's credit: how many messages
    // it may send in its next batch.
    caf::replies_to<consumed_batch_ptr>::with<uint32_t>,
    // Re-evaluates idle partitions and the watermark.
    caf::reacts_to<tick_atom>,
    // A consumer group assigned these partitions: they join the watermark.
    caf::reacts_to<assign_atom, std::vector<partition_assignment>>,
    // A consumer group revokes these partitions (pids): what is held for
    // them is dropped; answers once the executor ran every release before
    // and says where the partitions stand.
    caf::replies_to<revoke_atom, std::vector<uint32_t>>::with<revocation>,
    // Stops releasing; answers once no release is in flight.
    caf::replies_to<drain_atom>::with<ack_atom>,
    // A bounded replay: answers once every partition reached the stop and
    // the executor ran everything before it.
    caf::replies_to<finish_atom>::with<ack_atom>,
    // Pacing (engine.replay_speed): releases what is due by now.
    caf::reacts_to<wake_atom>,
    // Counters (consumed, released, held, pauses, watermark, live).
    caf::replies_to<stats_atom>::with<pipeline_stats>>;

/// A running pipeline: owns the four actors.
using pipeline_actor = caf::typed_actor<
    // Ordered shutdown: consumer, orchestrator, executor, then a producer flush.
    caf::reacts_to<stop_atom>,
    // Every actor's counters, merged.
    caf::replies_to<stats_atom>::with<pipeline_stats>>;

} // namespace castor
