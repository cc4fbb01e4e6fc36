// SPDX-License-Identifier: Apache-2.0
// Delivery guarantees and failure handling against librdkafka's mock
// cluster: commits, restarts from them, dead letters, error
// policies, broker faults, awkward input.

#include "castor/dags/builtin.hpp"
#include "castor/pipeline.hpp"
#include "castor/serde.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <charconv>
#include <map>
#include <set>
#include <thread>

#include "kafka_env.hpp"
#include "pipeline_fixture.hpp"

using namespace std::chrono_literals;
using castor::start_policy;
using castor::test::header_of;
using castor::test::kafka_env;
using castor::test::record;
using castor::test::stop_and_wait;
using castor::test::system_fixture;
using castor::test::t0;
using castor::test::wait_until;
using castor::testing::api_fetch;
using castor::testing::api_produce;

namespace {

std::vector<record> numbered(const std::string& topic, int partitions, int count,
                             int first = 0) {
  std::vector<record> result;
  for (int i = first; i < first + count; ++i)
    result.push_back(
        {topic, i % partitions, "k" + std::to_string(i), std::to_string(i), t0 + i});
  return result;
}

castor::pipeline_definition_ptr copy_of(const std::string& in, const std::string& out,
                                        start_policy start) {
  auto def = castor::dags::copy({{"in", in, std::move(start)}}, {{"out", out}});
  REQUIRE(def);
  return *def;
}

// in (integers) -> "x<n>" strings -> sink out. The deserializer rejects
// values that are not integers: with their index (`indexed`) or without
// saying which (a plain exception); the node throws on 13.
castor::pipeline_definition_ptr numbers_dag(bool indexed) {
  auto graph = std::make_unique<castor::dag>();
  auto in = graph->source_stream<std::vector<int>>("in");
  auto shown = graph
                   ->stream([](const std::vector<int>& xs) {
                     std::vector<std::string> out;
                     for (auto x : xs) {
                       if (x == 13)
                         throw std::runtime_error("unlucky number");
                       out.push_back("x" + std::to_string(x));
                     }
                     return out;
                   })
                   .named("show")
                   .map(in);
  auto out = graph->sink("out", shown);
  auto def = std::make_shared<castor::pipeline_definition>(std::move(graph));
  castor::deserializer<std::vector<int>> parse =
      [indexed](std::span<const castor::message_view> ms) {
        std::vector<int> result;
        for (size_t i = 0; i < ms.size(); ++i) {
          auto text = ms[i].value.value_or("");
          int x = 0;
          auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
          if (ec != std::errc{} || end != text.data() + text.size()) {
            auto what = fmt::format("not an integer: '{}'", text);
            if (indexed)
              throw castor::deserialize_error(i, what);
            throw std::runtime_error(what);
          }
          result.push_back(x);
        }
        return result;
      };
  def->source(in, "in", parse, start_policy::earliest());
  def->sink(out, castor::serde::strings_out(), "out");
  return def;
}

std::vector<std::string> values_of(const std::vector<record>& rs) {
  std::vector<std::string> result;
  for (auto& r : rs)
    result.push_back(r.value.value_or("<null>"));
  return result;
}

} // namespace

TEST_CASE("with a group, castor commits what was delivered, and a restart from "
          "committed reads only what came after",
          "[integration][delivery]") {
  kafka_env env{{{"in", 2}, {"out", 1}}};
  env.produce(numbered("in", 2, 1000));
  system_fixture fx;
  auto cfg = env.config();
  cfg.consumer["group.id"] = "copier";
  cfg.commit_interval = 100ms;
  auto pipeline = fx.run(copy_of("in", "out", start_policy::committed()), cfg);
  auto s = wait_until(*fx.sys, pipeline, [](auto& s) {
    return s.live && s.delivered == 1000 && s.commits > 0;
  });
  // Periodic commits reach the end once everything is delivered.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (env.committed("copier", "in", 2) != std::vector<int64_t>{500, 500} &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  CHECK(env.committed("copier", "in", 2) == std::vector<int64_t>{500, 500});
  stop_and_wait(*fx.sys, pipeline);

  env.produce(numbered("in", 2, 10, 1000));
  auto again = fx.run(copy_of("in", "out", start_policy::committed()), cfg);
  s = wait_until(*fx.sys, again, [](auto& s) { return s.live && s.delivered == 10; });
  CHECK(s.consumed == 10);
  stop_and_wait(*fx.sys, again);
  // The final commit of the clean stop.
  CHECK(env.committed("copier", "in", 2) == std::vector<int64_t>{505, 505});
  auto out = env.read("out", 1010);
  CHECK(out.size() == 1010);
}

TEST_CASE("a clean stop commits at the end even with no periodic commits",
          "[integration][delivery]") {
  kafka_env env{{{"in", 3}, {"out", 1}}};
  env.produce(numbered("in", 3, 300));
  system_fixture fx;
  auto cfg = env.config();
  cfg.consumer["group.id"] = "final-only";
  cfg.commit_interval = castor::duration::zero();
  auto pipeline = fx.run(copy_of("in", "out", start_policy::earliest()), cfg);
  wait_until(*fx.sys, pipeline, [](auto& s) { return s.live && s.delivered == 300; });
  CHECK(env.committed("final-only", "in", 3) ==
        std::vector<int64_t>{RD_KAFKA_OFFSET_INVALID, RD_KAFKA_OFFSET_INVALID,
                             RD_KAFKA_OFFSET_INVALID});
  stop_and_wait(*fx.sys, pipeline);
  CHECK(env.committed("final-only", "in", 3) == std::vector<int64_t>{100, 100, 100});
}

TEST_CASE("a produce that fails after librdkafka's retries stops the pipeline and no "
          "commit passes it",
          "[integration][delivery]") {
  kafka_env env{{{"in", 1}, {"out", 1}}};
  env.produce(numbered("in", 1, 50));
  // Every produce request fails with a retriable error until the records
  // time out.
  std::vector<rd_kafka_resp_err_t> errors(400, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  rd_kafka_mock_push_request_errors_array(env.cluster->get(), api_produce, errors.size(),
                                          errors.data());
  system_fixture fx;
  auto cfg = env.config();
  cfg.consumer["group.id"] = "failing";
  cfg.commit_interval = 50ms;
  cfg.producer["message.timeout.ms"] = "1500";
  cfg.producer["retry.backoff.ms"] = "10";
  auto pipeline = fx.run(copy_of("in", "out", start_policy::earliest()), cfg);
  auto err = castor::wait_for(*fx.sys, pipeline);
  REQUIRE(err);
  CHECK(castor::code_of(err) == castor::ec::produce_failed);
  CHECK_THAT(castor::render(err), Catch::Contains("delivery to out"));
  CHECK(env.committed("failing", "in", 1) ==
        std::vector<int64_t>{RD_KAFKA_OFFSET_INVALID});
  rd_kafka_mock_clear_request_errors(env.cluster->get(), api_produce);
}

TEST_CASE("a record larger than the producer allows stops the pipeline with an error "
          "naming its sink, topic and sizes",
          "[integration][delivery]") {
  kafka_env env{{{"in", 1}, {"out", 1}}};
  env.produce({{"in", 0, std::nullopt, std::string(5000, 'x'), t0}});
  system_fixture fx;
  auto cfg = env.config();
  cfg.producer["message.max.bytes"] = "2000";
  auto pipeline = fx.run(copy_of("in", "out", start_policy::earliest()), cfg);
  auto err = castor::wait_for(*fx.sys, pipeline);
  REQUIRE(err);
  CHECK(castor::code_of(err) == castor::ec::serialize_failed);
  CHECK_THAT(castor::render(err),
             Catch::Contains("sink 'out' made a record of 5036 bytes for topic 'out'") &&
                 Catch::Contains("message.max.bytes is 2000"));
}

TEST_CASE("merge: a record that castor's provenance headers push over the limit is "
          "dead-lettered cut to fit, and the replay goes on",
          "[integration][delivery]") {
  kafka_env env{{{"in", 1}, {"out", 1}, {"dlq", 1}}};
  // Fits the broker and librdkafka's default 1,000,000 bytes by itself; the
  // four castor.* headers of merge push it over.
  env.produce({{"in", 0, "big", std::string(999'900, 'x'), t0},
               {"in", 0, "small", std::string("y"), t0 + 1}});
  system_fixture fx;
  auto cfg = env.config();
  cfg.dead_letter_topic = "dlq";
  cfg.on_node_error = castor::error_policy::dead_letter;
  auto def =
      castor::dags::merge({{"in", "in", start_policy::earliest()}}, {{"out", "out"}});
  REQUIRE(def);
  auto pipeline = fx.run(*def, cfg);
  auto out = env.read("out", 1);
  REQUIRE(out.size() == 1);
  CHECK(out[0].key == "small");
  auto dead = env.read("dlq", 1);
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].key == "big");
  CHECK(header_of(dead[0], "castor.dlq.stage") == "produce:out");
  CHECK_THAT(*header_of(dead[0], "castor.dlq.error"),
             Catch::Contains("without castor's headers") &&
                 Catch::Contains("message.max.bytes is 1000000"));
  CHECK(dead[0].value->size() < 999'900);
  stop_and_wait(*fx.sys, pipeline);
}

TEST_CASE("a broker down for seconds mid-replay is waited out: every message at least "
          "once, in order",
          "[integration][delivery]") {
  kafka_env env{{{"in", 2}, {"out", 1}}};
  const int n = 20000;
  env.produce(numbered("in", 2, n));
  system_fixture fx;
  auto cfg = env.config();
  cfg.batch_size = 200;
  cfg.consumer["group.id"] = "outage";
  // Small fetches, so that the replay takes many of them; quick reconnects,
  // so that the test is short (both passed through to librdkafka).
  cfg.consumer["max.partition.fetch.bytes"] = "4096";
  cfg.consumer["reconnect.backoff.max.ms"] = "200";
  cfg.producer["reconnect.backoff.max.ms"] = "200";
  cfg.commit_interval = 100ms;
  // Each request takes 10 ms more: the replay takes a second or so.
  REQUIRE(rd_kafka_mock_broker_set_rtt(env.cluster->get(), 1, 10) ==
          RD_KAFKA_RESP_ERR_NO_ERROR);
  auto pipeline = fx.run(copy_of("in", "out", start_policy::earliest()), cfg);
  wait_until(*fx.sys, pipeline, [](auto& s) { return s.consumed > 0; });
  auto before_down = castor::test::stats_of(*fx.sys, pipeline);
  REQUIRE(rd_kafka_mock_broker_set_down(env.cluster->get(), 1) ==
          RD_KAFKA_RESP_ERR_NO_ERROR);
  // Mid-replay: the consumer has not read everything yet.
  auto at_down = castor::test::stats_of(*fx.sys, pipeline);
  CHECK(at_down.consumed < uint64_t(n));
  // What the broker can have appended without answering: the records
  // handed to librdkafka by now, less those whose answer came before.
  auto in_flight = at_down.produced - before_down.delivered;
  std::this_thread::sleep_for(3s);
  REQUIRE(rd_kafka_mock_broker_set_up(env.cluster->get(), 1) ==
          RD_KAFKA_RESP_ERR_NO_ERROR);
  REQUIRE(rd_kafka_mock_broker_set_rtt(env.cluster->get(), 1, 0) ==
          RD_KAFKA_RESP_ERR_NO_ERROR);
  auto s = wait_until(
      *fx.sys, pipeline, [n](auto& s) { return s.live && s.delivered == uint64_t(n); },
      60s);
  CHECK(s.delivery_errors == 0);
  CHECK(s.consumed == uint64_t(n));
  CHECK(s.released == uint64_t(n));
  // castor consumed, ran and produced every message once, in order. The
  // mock broker appends a produce request whose answer was lost when it
  // went down, and appends it again when librdkafka retries: unlike a real
  // broker, it does not deduplicate the idempotent producer's retries. So
  // the topic holds each record at least once, the first copies in order,
  // and no more extra copies than were in flight.
  auto out = env.read("out", 2 * n, 3s);
  REQUIRE(out.size() >= static_cast<size_t>(n));
  std::vector<int64_t> first_times;
  std::set<std::string> keys;
  for (auto& r : out)
    if (keys.insert(*r.key).second)
      first_times.push_back(r.time_ms);
  CHECK(keys.size() == static_cast<size_t>(n));
  CHECK(std::is_sorted(first_times.begin(), first_times.end()));
  auto extra = out.size() - keys.size();
  INFO("copies appended twice by the mock broker: " << extra << ", records in flight "
                                                    << "when it went down: at most "
                                                    << in_flight);
  CHECK(extra <= in_flight);
  stop_and_wait(*fx.sys, pipeline);
  CHECK(env.committed("outage", "in", 2) == std::vector<int64_t>{n / 2, n / 2});
}

TEST_CASE("errors pushed on fetch and produce requests are retried: every message once, "
          "in order",
          "[integration][delivery]") {
  kafka_env env{{{"in", 2}, {"out", 1}}};
  const int n = 5000;
  env.produce(numbered("in", 2, n));
  auto* mc = env.cluster->get();
  rd_kafka_mock_push_request_errors(
      mc, api_fetch, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
      RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
  rd_kafka_mock_push_request_errors(
      mc, api_produce, 3, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
  system_fixture fx;
  auto cfg = env.config();
  cfg.batch_size = 100;
  auto pipeline = fx.run(copy_of("in", "out", start_policy::earliest()), cfg);
  auto s = wait_until(
      *fx.sys, pipeline, [n](auto& s) { return s.live && s.delivered == uint64_t(n); },
      60s);
  CHECK(s.delivery_errors == 0);
  CHECK(s.consumed == uint64_t(n));
  CHECK(s.released == uint64_t(n));
  // n records with n distinct keys: nothing lost, nothing twice.
  auto out = env.read("out", n);
  REQUIRE(out.size() == static_cast<size_t>(n));
  std::set<std::string> keys;
  std::vector<int64_t> times;
  for (auto& r : out) {
    keys.insert(*r.key);
    times.push_back(r.time_ms);
  }
  CHECK(keys.size() == static_cast<size_t>(n));
  CHECK(std::is_sorted(times.begin(), times.end()));
  stop_and_wait(*fx.sys, pipeline);
}

TEST_CASE("rejected messages go to the dead-letter topic with their origin and the "
          "error, and the others go on",
          "[integration][delivery]") {
  auto indexed = GENERATE(true, false);
  kafka_env env{{{"in", 1}, {"out", 1}, {"dlq", 1}}};
  env.produce({{"in", 0, "a", "1", t0},
               {"in", 0, "b", "oops", t0 + 1, {{"trace", "t-1"}, {"nil", std::nullopt}}},
               {"in", 0, std::nullopt, "3", t0 + 2},
               {"in", 0, "d", std::nullopt, t0 + 3}});
  system_fixture fx;
  auto cfg = env.config();
  cfg.dead_letter_topic = "dlq";
  auto pipeline = fx.run(numbers_dag(indexed), cfg);
  auto s = wait_until(*fx.sys, pipeline, [](auto& s) {
    return s.live && s.released == 4 && s.delivered == s.produced && s.produced >= 3;
  });
  CHECK(s.dead_lettered == 2);
  auto out = env.read("out", 3, 2s);
  CHECK(values_of(out) == std::vector<std::string>{"x1", "x3"});
  auto dlq = env.read("dlq", 2);
  REQUIRE(dlq.size() == 2);
  auto& bad = dlq[0];
  CHECK(bad.key == "b");
  CHECK(bad.value == "oops");
  CHECK(bad.time_ms == t0 + 1);
  CHECK(header_of(bad, "trace") == "t-1");
  CHECK_FALSE(header_of(bad, "nil").has_value());
  CHECK(header_of(bad, "castor.dlq.topic") == "in");
  CHECK(header_of(bad, "castor.dlq.partition") == "0");
  CHECK(header_of(bad, "castor.dlq.offset") == "1");
  CHECK(header_of(bad, "castor.dlq.timestamp") == std::to_string(t0 + 1));
  CHECK(header_of(bad, "castor.dlq.stage") == "deserialize:in");
  CHECK_THAT(header_of(bad, "castor.dlq.error").value_or(""),
             Catch::Contains("not an integer: 'oops'"));
  // A null value (a tombstone) is not an integer either; its key is kept.
  CHECK(dlq[1].key == "d");
  CHECK_FALSE(dlq[1].value.has_value());
  CHECK(header_of(dlq[1], "castor.dlq.offset") == "3");
  stop_and_wait(*fx.sys, pipeline);
}

TEST_CASE("without a dead-letter topic a rejected message stops the pipeline naming "
          "topic, partition and offset",
          "[integration][delivery]") {
  kafka_env env{{{"in", 1}, {"out", 1}}};
  env.produce({{"in", 0, "a", "1", t0}, {"in", 0, "b", "oops", t0 + 1}});
  system_fixture fx;
  auto pipeline = fx.run(numbers_dag(true), env.config());
  auto err = castor::wait_for(*fx.sys, pipeline);
  REQUIRE(err);
  CHECK(castor::code_of(err) == castor::ec::deserialize_failed);
  CHECK_THAT(castor::render(err), Catch::Contains("in[0] offset 1"));
}

TEST_CASE("a node that throws: dead_letter sends the failed cycle's input to the "
          "dead-letter topic and goes on",
          "[integration][delivery]") {
  kafka_env env{{{"in", 1}, {"out", 1}, {"dlq", 1}}};
  // One message per cycle: batch_size 1.
  env.produce({{"in", 0, "a", "12", t0},
               {"in", 0, "b", "13", t0 + 1},
               {"in", 0, "c", "14", t0 + 2}});
  system_fixture fx;
  auto cfg = env.config();
  cfg.batch_size = 1;
  cfg.dead_letter_topic = "dlq";
  cfg.on_node_error = castor::error_policy::dead_letter;
  auto pipeline = fx.run(numbers_dag(true), cfg);
  auto s = wait_until(*fx.sys, pipeline, [](auto& s) {
    return s.live && s.released == 3 && s.produced == 3 && s.delivered == 3;
  });
  CHECK(s.failed_cycles == 1);
  CHECK(values_of(env.read("out", 2)) == std::vector<std::string>{"x12", "x14"});
  auto dlq = env.read("dlq", 1);
  REQUIRE(dlq.size() == 1);
  CHECK(dlq[0].key == "b");
  CHECK(header_of(dlq[0], "castor.dlq.stage") == "node:show");
  CHECK_THAT(header_of(dlq[0], "castor.dlq.error").value_or(""),
             Catch::Contains("unlucky number"));
  stop_and_wait(*fx.sys, pipeline);
}

TEST_CASE("null keys, empty values, null header values and large messages pass through "
          "unchanged",
          "[integration][delivery]") {
  kafka_env env{{{"in", 1}, {"out", 1}}};
  std::string large(900 * 1024, 'L');
  env.produce({{"in", 0, std::nullopt, "no key", t0},
               {"in", 0, "empty", "", t0 + 1},
               {"in", 0, "", "empty key", t0 + 2},
               {"in", 0, "tomb", std::nullopt, t0 + 3},
               {"in", 0, "h", "v", t0 + 4, {{"null", std::nullopt}, {"e", ""}}},
               {"in", 0, "large", large, t0 + 5}});
  system_fixture fx;
  auto pipeline = fx.run(copy_of("in", "out", start_policy::earliest()), env.config());
  auto out = env.read("out", 6);
  REQUIRE(out.size() == 6);
  CHECK_FALSE(out[0].key.has_value());
  CHECK(out[0].value == "no key");
  CHECK(out[1].value == "");
  CHECK(out[2].key == "");
  CHECK_FALSE(out[3].value.has_value());
  // A message without headers comes out without any.
  for (int i : {0, 1, 2, 3, 5})
    CHECK(out[i].headers.empty());
  CHECK(out[4].headers.size() == 2);
  CHECK_FALSE(header_of(out[4], "null").has_value());
  CHECK(header_of(out[4], "e") == "");
  CHECK(out[5].value == large);
  for (int i = 0; i < 6; ++i)
    CHECK(out[i].time_ms == t0 + i);
  stop_and_wait(*fx.sys, pipeline);
}

namespace {

// A pipeline of one stream from topic "in" to topic "out": `fn` turns a
// cycle's message views into records.
template <class Fn>
castor::pipeline_definition_ptr views_to_records(Fn fn) {
  auto graph = std::make_unique<castor::dag>();
  auto in = graph->source_stream<std::vector<castor::message_view>>("in");
  auto out = graph->stream(std::move(fn)).map(in);
  auto sink = graph->sink("out", out);
  auto def = std::make_shared<castor::pipeline_definition>(std::move(graph));
  def->source(in, "in", castor::serde::views(), start_policy::earliest());
  def->sink(sink, castor::serde::records_out(), "out");
  return def;
}

// `count` messages of 10 KB each on in[0], numbered from `first`.
std::vector<record> big_messages(int first, int count) {
  std::vector<record> result;
  for (int i = first; i < first + count; ++i)
    result.push_back({"in", 0, "k" + std::to_string(i),
                      std::to_string(i) + std::string(10 * 1024, '.'), t0 + i});
  return result;
}

// The number at the start of a big message's value.
int number_of(const record& r) {
  return std::stoi(r.value->substr(0, r.value->find('.')));
}

} // namespace

TEST_CASE("a position that retention removed mid-replay resumes at the oldest offset "
          "the broker holds, and the skipped range is logged and counted",
          "[integration][delivery]") {
  kafka_env env{{{"in", 1}, {"out", 1}}};
  env.produce(big_messages(0, 50));
  // The DAG waits at a gate: the replay stops with castor's position early
  // in the partition.
  auto gate = std::make_shared<std::atomic<bool>>(false);
  auto def = views_to_records([gate](const std::vector<castor::message_view>& ms) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!*gate && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(5ms);
    std::vector<castor::producer_record> records;
    for (auto& m : ms) {
      castor::producer_record r;
      r.key = std::string{*m.key};
      r.value = std::string{*m.value};
      records.push_back(std::move(r));
    }
    return records;
  });
  system_fixture fx;
  auto cfg = env.config();
  cfg.batch_size = 2;
  // Little prefetch: librdkafka's position stays close to castor's.
  cfg.consumer["queued.min.messages"] = "1";
  cfg.consumer["queued.max.messages.kbytes"] = "1";
  cfg.consumer["fetch.max.bytes"] = "30000";
  cfg.consumer["message.max.bytes"] = "30000";
  // The output must fit the development broker's 5 MB per partition.
  cfg.producer["compression.type"] = "lz4";
  cfg.consumer["max.partition.fetch.bytes"] = "30000";
  auto pipeline = fx.run(def, cfg);
  wait_until(*fx.sys, pipeline, [](auto& s) { return s.consumed > 0; });
  // 6 MB more: the development broker keeps 5 MB per partition and drops
  // the oldest messages, castor's position among them.
  env.produce(big_messages(50, 600));
  *gate = true;
  auto s = wait_until(
      *fx.sys, pipeline,
      [](auto& s) {
        return s.offset_resets > 0 && s.consumed + s.skipped_offsets == 650;
      },
      60s);
  CHECK(s.offset_resets == 1);
  REQUIRE(s.skipped_offsets > 0);
  REQUIRE(s.partitions.size() == 1);
  CHECK(s.partitions[0].skipped == static_cast<int64_t>(s.skipped_offsets));
  // The position is where the data ends, not where the reset started.
  CHECK(s.partitions[0].position == 650);
  auto consumed = s.consumed;
  s = wait_until(*fx.sys, pipeline, [&](auto& s) { return s.delivered == consumed; });
  // Every message the broker still held after the reset came out, once, in
  // order; the skipped ones are exactly the gap.
  auto outs = env.read("out", consumed);
  REQUIRE(outs.size() == consumed);
  std::vector<int> numbers;
  for (auto& r : outs)
    numbers.push_back(number_of(r));
  CHECK(std::is_sorted(numbers.begin(), numbers.end()));
  CHECK(numbers.back() == 649);
  CHECK(consumed + s.skipped_offsets == 650);
  stop_and_wait(*fx.sys, pipeline);
}

TEST_CASE("an explicit start offset the broker no longer holds starts at the oldest one, "
          "logged and counted, and auto.offset.reset = error stops instead",
          "[integration][delivery]") {
  kafka_env env{{{"in", 1}, {"out", 1}}};
  env.produce(big_messages(0, 600)); // 6 MB: the oldest ones are dropped
  system_fixture fx;
  auto pipeline = fx.run(copy_of("in", "out", start_policy::explicit_offsets({{0, 0}})),
                         env.config());
  auto s = wait_until(*fx.sys, pipeline, [](auto& s) { return s.live; });
  CHECK(s.offset_resets == 1);
  CHECK(s.skipped_offsets > 0);
  CHECK(s.consumed + s.skipped_offsets == 600);
  stop_and_wait(*fx.sys, pipeline);

  auto cfg = env.config();
  cfg.consumer["auto.offset.reset"] = "error";
  auto strict =
      fx.run(copy_of("in", "out", start_policy::explicit_offsets({{0, 0}})), cfg);
  auto err = castor::wait_for(*fx.sys, strict);
  REQUIRE(err);
  CHECK(castor::code_of(err) == castor::ec::offset_out_of_range);
  CHECK_THAT(castor::render(err), Catch::Contains("in[0]: explicit offset 0 is below"));
}

TEST_CASE("timestamps before 1970 are times like any other: merge keeps them and names "
          "them in castor.timestamp",
          "[integration][delivery]") {
  kafka_env env{{{"in", 1}, {"out", 1}}};
  // -1 is Kafka's "no timestamp"; -86,400,000 is 1969-12-31T00:00:00Z.
  env.produce({{"in", 0, "past", "a", -86'400'000}, {"in", 0, "later", "b", -5000}});
  system_fixture fx;
  auto def =
      castor::dags::merge({{"in", "in", start_policy::earliest()}}, {{"out", "out"}});
  REQUIRE(def);
  auto pipeline = fx.run(*def, env.config());
  auto out = env.read("out", 2);
  REQUIRE(out.size() == 2);
  CHECK(out[0].key == "past");
  CHECK(out[0].time_ms == -86'400'000);
  CHECK(header_of(out[0], "castor.timestamp") == "-86400000");
  CHECK(out[1].time_ms == -5000);
  CHECK(header_of(out[1], "castor.timestamp") == "-5000");
  stop_and_wait(*fx.sys, pipeline);
}

TEST_CASE("an unreachable broker at start-up stops the pipeline within the start-up "
          "timeout with an error naming it",
          "[integration][delivery]") {
  system_fixture fx;
  auto cfg = castor::pipeline_config{};
  cfg.consumer = {{"bootstrap.servers", "127.0.0.1:1"}};
  cfg.producer = {{"bootstrap.servers", "127.0.0.1:1"}};
  cfg.startup_timeout = 2s;
  auto started = std::chrono::steady_clock::now();
  auto pipeline = fx.run(copy_of("in", "out", start_policy::earliest()), cfg);
  auto err = castor::wait_for(*fx.sys, pipeline);
  auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(err);
  CHECK(castor::code_of(err) == castor::ec::broker_unreachable);
  CHECK_THAT(castor::render(err), Catch::Contains("in"));
  CHECK(took < 6s);
}

TEST_CASE("a DAG reads a consumed message's headers as often as it likes and gets "
          "them right, with and without headers",
          "[integration][delivery]") {
  kafka_env env{{{"in", 1}, {"out", 1}}};
  env.produce({{"in", 0, "a", "none", t0},
               {"in", 0, "b", "two", t0 + 1, {{"x", "1"}, {"y", std::nullopt}}},
               {"in", 0, "c", "none again", t0 + 2},
               {"in", 0, "d", "repeated", t0 + 3, {{"x", "1"}, {"x", "2"}}}});
  // Each message: its header count read twice, then the last "x" (or "-").
  auto def = views_to_records([](const std::vector<castor::message_view>& ms) {
    std::vector<castor::producer_record> records;
    for (auto& m : ms) {
      auto first = m.headers.size();
      auto again = m.headers.size();
      auto x = m.headers.find("x");
      castor::producer_record r;
      r.key = std::string{*m.key};
      r.value = fmt::format("{} {} {}", first, again, x && x->value ? *x->value : "-");
      records.push_back(std::move(r));
    }
    return records;
  });
  system_fixture fx;
  auto pipeline = fx.run(def, env.config());
  auto outs = env.read("out", 4);
  REQUIRE(outs.size() == 4);
  CHECK(outs[0].value == "0 0 -");
  CHECK(outs[1].value == "2 2 1");
  CHECK(outs[2].value == "0 0 -");
  CHECK(outs[3].value == "2 2 2");
  stop_and_wait(*fx.sys, pipeline);
}
