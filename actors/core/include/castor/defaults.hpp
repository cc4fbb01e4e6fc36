// SPDX-License-Identifier: Apache-2.0
#pragma once

// Every default of castor, once. The configuration structs of every layer
// (watermark_config, the Kafka clients, the actors' configs,
// pipeline_config) read their defaults from here, and docs/configuration.md
// documents them.

#include "castor/time.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace castor::defaults {

using namespace std::chrono_literals;

// -- replay ------------------------------------------------------------------

/// Most messages per consumed batch and per release; the hold cap is 5x.
inline constexpr size_t batch_size = 5000;
/// The largest batch_size: the hold cap and every allowance stay far from
/// overflowing.
inline constexpr size_t max_batch_size = 1'000'000;
/// A partition silent this long while the broker answers stops holding the
/// watermark back.
inline constexpr duration idle_timeout = 30s;
/// Silence counts only between answers of the broker at most this far apart.
inline constexpr duration answer_window = 2s;
/// How often the orchestrator looks at idle partitions and the watermark.
inline constexpr duration tick_interval = 250ms;
/// How often a replay progress line is logged.
inline constexpr duration progress_interval = 10s;
/// Releases the orchestrator may have in flight to the executor.
inline constexpr size_t releases_in_flight = 2;

// -- the DAG executor --------------------------------------------------------

/// Timer cycles without input in a row before the missed periods are skipped.
inline constexpr uint64_t timer_catch_up = 10'000;
/// Records per batch to the producer.
inline constexpr size_t records_per_batch = 10'000;
/// Record batches unanswered by the producer.
inline constexpr size_t record_batches_in_flight = 2;
/// Cycles in one turn of the executor.
inline constexpr size_t cycles_per_turn = 1000;

// -- Kafka -------------------------------------------------------------------

/// Each broker query at start-up.
inline constexpr duration startup_timeout = 10s;
/// How long a stop waits for the producer's deliveries.
inline constexpr duration flush_timeout = 10s;
/// How much longer than flush_timeout a stop may take (the other steps).
inline constexpr duration stop_grace = 3s;
/// How long closing a Kafka client may wait for librdkafka.
inline constexpr duration close_timeout = 1s;
/// How often progress is committed (with a group).
inline constexpr duration commit_interval = 5s;
/// How long the producer waits before retrying records that met a full queue.
inline constexpr duration producer_retry_interval = 5ms;
/// The prefetch of each partition (librdkafka's queued.min.messages and
/// queued.max.messages.kbytes), unless the consumer properties set them or
/// the memory budget lowers them (kafka::budget_properties).
inline constexpr const char* queued_min_messages = "50000";
inline constexpr const char* queued_max_messages_kbytes = "8192";
/// engine.memory_budget: what castor's consumer may hold in all (bytes).
inline constexpr size_t memory_budget = size_t{256} * 1024 * 1024;
/// librdkafka's auto.offset.reset, unless the consumer properties set it.
inline constexpr const char* auto_offset_reset = "earliest";
/// librdkafka's message.max.bytes, unless the producer properties set it.
inline constexpr size_t message_max_bytes = 1'000'000;

} // namespace castor::defaults
