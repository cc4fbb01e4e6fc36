// SPDX-License-Identifier: Apache-2.0
// The Kafka seam's pure parts: topic names and specs, record sizes.

#include "castor/kafka/config.hpp"

#include <catch2/catch.hpp>

#include <string>

TEST_CASE("topic specs are NAME:PARTITIONS and nothing else", "[kafka]") {
  auto ok = castor::kafka::parse_topic_spec("words.v2_x-y:4");
  REQUIRE(ok);
  CHECK(ok->name == "words.v2_x-y");
  CHECK(ok->partitions == 4);
  // "a:4x" used to be read as 4 partitions and "c:1:2" as topic "c:1".
  for (auto text : {"a:4x", "c:1:2", ":3", "a:0", "a:-1", "a", "a:", "a b:1", "..:1",
                    "a:10001", "a:99999999999"}) {
    auto spec = castor::kafka::parse_topic_spec(text);
    CHECK_FALSE(spec);
    if (!spec)
      CHECK_THAT(castor::render(spec.error()), Catch::Contains(text));
  }
  CHECK(castor::kafka::valid_topic_name(std::string(249, 'a')));
  CHECK_FALSE(castor::kafka::valid_topic_name(std::string(250, 'a')));
}

TEST_CASE("record sizes are counted as librdkafka counts them against message.max.bytes",
          "[kafka]") {
  castor::producer_record r;
  CHECK(castor::kafka::record_wire_size(r) == 36); // the framing alone
  r.key = std::string(10, 'k');
  r.value = std::string(100, 'v');
  CHECK(castor::kafka::record_wire_size(r) == 146);
  // A header costs its name and value and their varint lengths.
  r.headers.push_back({"castor.topic", std::string{"in"}});
  CHECK(castor::kafka::record_wire_size(r) == 146 + 12 + 2 + 1 + 1);
  r.headers.push_back({"null", std::nullopt});
  CHECK(castor::kafka::record_wire_size(r) == 146 + 16 + 4 + 1 + 1);
  // An origin counts as the four castor.* headers it goes out as.
  castor::producer_record merged;
  merged.value = std::string(100, 'v');
  merged.headers.push_back({"trace", std::string{"abc"}});
  merged.origin = castor::record_origin{"trades", 3, 1234567, castor::from_millis(-5)};
  auto as_headers = merged;
  as_headers.origin.reset();
  as_headers.headers = castor::all_headers(merged);
  CHECK(as_headers.headers ==
        std::vector<castor::header>{{"trace", std::string{"abc"}},
                                    {"castor.topic", std::string{"trades"}},
                                    {"castor.partition", std::string{"3"}},
                                    {"castor.offset", std::string{"1234567"}},
                                    {"castor.timestamp", std::string{"-5"}}});
  CHECK(castor::kafka::record_wire_size(merged) ==
        castor::kafka::record_wire_size(as_headers));
  merged.origin->time.reset(); // no timestamp header without a time
  CHECK(castor::all_headers(merged).size() == 4);
  CHECK(castor::kafka::max_message_bytes({}) == 1'000'000);
  CHECK(castor::kafka::max_message_bytes({{"message.max.bytes", "2000"}}) == 2000);
}

TEST_CASE("a memory budget is shared among the partitions' prefetch, within bounds",
          "[kafka]") {
  using castor::kafka::budget_properties;
  constexpr size_t mib = 1024 * 1024;
  // 256 MiB over 8 partitions: half of it is 16 MiB each, above castor's
  // default of 8 MiB per partition.
  auto eight = budget_properties(256 * mib, 8, {});
  CHECK(eight.at("queued.max.messages.kbytes") == "8192");
  CHECK(eight.at("max.partition.fetch.bytes") == std::to_string(mib));
  CHECK(eight.at("fetch.max.bytes") == std::to_string(32 * mib));
  // 512 partitions: 256 KiB each, fetched 128 KiB at a time.
  auto many = budget_properties(256 * mib, 512, {});
  CHECK(many.at("queued.max.messages.kbytes") == "256");
  CHECK(many.at("max.partition.fetch.bytes") == std::to_string(128 * 1024));
  // The count limit: 512 bytes a message of half the budget (librdkafka's
  // byte limit counts keys and values only), at most castor's default of
  // 50,000, at least 64.
  CHECK(eight.at("queued.min.messages") == "32768");
  CHECK(many.at("queued.min.messages") == "512");
  CHECK(budget_properties(256 * mib, 4, {}).at("queued.min.messages") == "50000");
  CHECK(budget_properties(16 * mib, 4096, {}).at("queued.min.messages") == "64");
  CHECK_FALSE(budget_properties(256 * mib, 512, {{"queued.min.messages", "10"}})
                  .contains("queued.min.messages"));
  // Never below 64 KiB a partition.
  CHECK(budget_properties(16 * mib, 4096, {}).at("queued.max.messages.kbytes") == "64");
  // A small budget bounds one fetch too (to an eighth of it), but not below
  // a message.
  CHECK(budget_properties(64 * mib, 8, {}).at("fetch.max.bytes") ==
        std::to_string(8 * mib));
  CHECK(budget_properties(4 * mib, 8, {}).at("fetch.max.bytes") == "1000000");
  // The producer's queue: an eighth of the budget.
  CHECK(castor::kafka::producer_budget_properties(256 * mib, {})
            .at("queue.buffering.max.kbytes") == std::to_string(32 * 1024));
  CHECK(castor::kafka::producer_budget_properties(256 * mib,
                                                  {{"queue.buffering.max.kbytes", "1"}})
            .empty());
  // What the user set wins; no budget, nothing.
  auto mine = budget_properties(256 * mib, 512, {{"queued.max.messages.kbytes", "1024"}});
  CHECK_FALSE(mine.contains("queued.max.messages.kbytes"));
  CHECK(mine.contains("max.partition.fetch.bytes"));
  CHECK(budget_properties(0, 512, {}).empty());
}
