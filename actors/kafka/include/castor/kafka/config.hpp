// SPDX-License-Identifier: Apache-2.0
#pragma once

// Kafka settings as castor handles them: librdkafka properties (passed
// through untouched), topic names and specs, sizes. No librdkafka types.

#include "castor/failure.hpp"
#include "castor/record.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace castor::kafka {

/// librdkafka properties, passed through untouched.
using properties = std::map<std::string, std::string>;

/// Set when the caller should give up waiting (a stop during start-up).
using cancel_flag = std::shared_ptr<const std::atomic<bool>>;

/// Whether a property holds a secret (its name contains password, secret,
/// key, token or credentials): messages and printed configurations mask it.
bool is_secret(const std::string& key);

/// Whether librdkafka accepts `key` = `value` for a client of kind `what`
/// ("consumer", "producer"): `ec::kafka_config` naming the property, its
/// value (masked when secret) and librdkafka's reason otherwise.
failure check_property(const std::string& key, const std::string& value,
                       const std::string& what);

/// Whether `name` is a legal Kafka topic name: 1 to 249 characters of
/// a-z, A-Z, 0-9, '.', '_' and '-', and neither "." nor "..".
bool valid_topic_name(std::string_view name);

/// A topic to create with its partition count.
struct topic_spec {
  std::string name;
  int partitions = 1;
};

/// The most partitions a topic spec may ask for.
inline constexpr int max_topic_partitions = 10000;

/// Parses "NAME:PARTITIONS" (a legal topic name, 1 to max_topic_partitions
/// partitions, nothing else): "words:4". `ec::invalid_config` saying what is
/// wrong otherwise ("a:4x", "c:1:2", ":3", "a:0").
result<topic_spec> parse_topic_spec(std::string_view text);

/// Waits until Kafka clients that were still closing in the background (a
/// broker did not answer when castor stopped: see destroy_within) are gone,
/// or `timeout` passed; returns whether none is left. An application that
/// embeds castor calls it before returning from main, so that no librdkafka
/// thread outlives static destruction (castor's own binary exits with
/// std::_Exit instead).
bool finish_closing(std::chrono::milliseconds timeout);

/// A client whose destruction a thread of castor's carries out later (the
/// consumer's fetcher waker, when a close cannot wait for its query):
/// counted by `finish_closing` from `begin_closing` until `end_closing`.
void begin_closing();
void end_closing();

/// librdkafka's version, e.g. "2.0.2".
const char* librdkafka_version() noexcept;

/// The size librdkafka counts a record at against `message.max.bytes`:
/// key, value and headers plus the record's largest framing.
size_t record_wire_size(const producer_record& r);

/// The producer's `message.max.bytes` in `props` (librdkafka's default,
/// 1000000, when unset).
size_t max_message_bytes(const properties& props);

/// The producer's part of a memory budget: `queue.buffering.max.kbytes`, an
/// eighth of it (librdkafka's default is 1 GiB), unless `given` sets it.
properties producer_budget_properties(size_t budget, const properties& given);

/// What librdkafka may prefetch for `partitions` partitions within a memory
/// budget of `budget` bytes (engine.memory_budget): half of it shared among
/// the partitions (a quarter is for what the orchestrator holds and has in
/// flight, hold_unit_bytes in castor/watermark_core.hpp; an eighth for the
/// producer's queue), each partition's share between 64 KiB and castor's default
/// prefetch (8 MiB): `queued.max.messages.kbytes`, `queued.min.messages`
/// (half the budget over the partitions at 512 bytes a message, 64 to
/// 50,000: librdkafka's byte limit counts keys and values only, not the op
/// each message costs), `max.partition.fetch.bytes` (half a share: a fetch
/// adds up to that much to a partition's queue) and `fetch.max.bytes` (an
/// eighth of the budget: one fetch response in memory). Only the properties
/// `given` does not set; none for a budget of 0.
properties budget_properties(size_t budget, size_t partitions, const properties& given);

} // namespace castor::kafka
