// SPDX-License-Identifier: Apache-2.0
#include "castor/kafka/config.hpp"

#include "castor/defaults.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace castor::kafka {

bool is_secret(const std::string& key) {
  for (auto word : {"password", "secret", "key", "token", "credentials"})
    if (key.find(word) != std::string::npos)
      return true;
  return false;
}

bool valid_topic_name(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..")
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
           c == '-';
  });
}

result<topic_spec> parse_topic_spec(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return failure(ec::invalid_config,
                   fmt::format("'{}' is not NAME:PARTITIONS: {}", text, why));
  };
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return bad("no ':PARTITIONS'");
  auto name = text.substr(0, colon);
  auto count = text.substr(colon + 1);
  if (!valid_topic_name(name))
    return bad(
        fmt::format("'{}' is not a topic name (1-249 of a-z A-Z 0-9 . _ -)", name));
  int partitions = 0;
  auto [end, err] =
      std::from_chars(count.data(), count.data() + count.size(), partitions);
  if (count.empty() || err != std::errc{} || end != count.data() + count.size() ||
      partitions < 1 || partitions > max_topic_partitions)
    return bad(fmt::format("the partition count must be a number from 1 to {}",
                           max_topic_partitions));
  return topic_spec{std::string{name}, partitions};
}

namespace {

// Bytes of a zig-zag varint (as librdkafka encodes lengths in v2 records).
size_t varint_size(int64_t n) {
  auto z = static_cast<uint64_t>((n << 1) ^ (n >> 63));
  size_t bytes = 1;
  while (z >= 0x80) {
    z >>= 7;
    ++bytes;
  }
  return bytes;
}

} // namespace

size_t record_wire_size(const producer_record& r) {
  // librdkafka's RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD: length, attributes,
  // timestamp and offset deltas, key and value lengths, header count.
  constexpr size_t overhead = 5 + 1 + 10 + 5 + 5 + 5 + 5;
  size_t size = overhead + (r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0);
  auto add = [&](size_t name, size_t value) {
    size += name + value + varint_size(static_cast<int64_t>(name)) +
            varint_size(static_cast<int64_t>(value));
  };
  for (auto& h : r.headers)
    add(h.name.size(), h.value ? h.value->size() : 0);
  if (r.origin)
    for_each_origin_header(*r.origin, [&](std::string_view name, std::string_view value) {
      add(name.size(), value.size());
    });
  return size;
}

properties budget_properties(size_t budget, size_t partitions, const properties& given) {
  properties result;
  if (budget == 0 || partitions == 0)
    return result;
  constexpr size_t floor = 64 * 1024;
  constexpr size_t ceiling = 8192 * 1024; // defaults::queued_max_messages_kbytes
  constexpr size_t message_cost = 512;
  constexpr size_t most_messages = 50'000; // defaults::queued_min_messages
  auto share = std::clamp(budget / 2 / partitions, floor, ceiling);
  auto put = [&](const char* key, size_t value) {
    if (!given.contains(key))
      result[key] = std::to_string(value);
  };
  put("queued.max.messages.kbytes", share / 1024);
  // That limit counts keys and values only, and a message queued in
  // librdkafka costs some 300 bytes more (its op: 1.5 M messages of 20 B
  // prefetched took 507 MB): with small messages the count limit
  // (queued.min.messages, 50,000) is what stopped a partition's fetches,
  // 15 MB of ops whatever its share. Counted at 512 bytes a message, the
  // ops take at most about 0.6 of a share beside its keys and values. Both
  // limits decide when a partition is fetched again; what one fetch brings
  // comes on top (up to max.partition.fetch.bytes, compressed: more
  // messages than the count when they are small). (Not lower: librdkafka
  // 2.0.2 stops fetching a partition at its limit until its broker thread
  // wakes, and the consumer's wake-ups cost it 20 ms each: a lower limit at
  // few partitions brought case 8's replay at the cap from 89-104 % of it
  // without the cap to 70-89 %.)
  put("queued.min.messages",
      std::clamp<size_t>(budget / 2 / partitions / message_cost, 64, most_messages));
  // A fetch adds up to this much to a partition's queue once it is below
  // its limit: half the share, so the queue stays within 1.5 shares.
  put("max.partition.fetch.bytes", std::clamp<size_t>(share / 2, floor, 1024 * 1024));
  // One fetch request brings at most this much from a broker (librdkafka's
  // default is 50 MB), and never less than one message.
  put("fetch.max.bytes",
      std::clamp<size_t>(budget / 8, max_message_bytes(given), 50 * 1024 * 1024));
  return result;
}

properties producer_budget_properties(size_t budget, const properties& given) {
  properties result;
  if (budget > 0 && !given.contains("queue.buffering.max.kbytes"))
    result["queue.buffering.max.kbytes"] =
        std::to_string(std::max<size_t>(budget / 8, 4 * 1024 * 1024) / 1024);
  return result;
}

size_t max_message_bytes(const properties& props) {
  if (auto i = props.find("message.max.bytes"); i != props.end()) {
    size_t value = 0;
    auto [end, err] =
        std::from_chars(i->second.data(), i->second.data() + i->second.size(), value);
    if (err == std::errc{} && end == i->second.data() + i->second.size())
      return value;
  }
  return defaults::message_max_bytes;
}

} // namespace castor::kafka
