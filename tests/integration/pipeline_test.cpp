// SPDX-License-Identifier: Apache-2.0
// The whole pipeline against librdkafka's mock cluster (docs/pipeline.md).

#include "castor/dags/builtin.hpp"
#include "castor/logger.hpp"
#include "castor/pipeline.hpp"
#include "castor/watermark_core.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <map>
#include <set>
#include <thread>

#include "kafka_env.hpp"
#include "pipeline_fixture.hpp"

using namespace std::chrono_literals;
using castor::start_policy;
using castor::test::kafka_env;
using castor::test::record;
using castor::test::stats_of;
using castor::test::stop_and_wait;
using castor::test::system_fixture;
using castor::test::t0;
using castor::test::wait_until;

TEST_CASE("word count of the seed: counts come out of the counts topic",
          "[integration][pipeline]") {
  kafka_env env{{{"words", 4}, {"counts", 1}}};
  std::vector<record> input;
  std::vector<std::string> lines{"the quick brown fox", "jumps over the lazy dog",
                                 "the dog sleeps", "fox"};
  for (size_t i = 0; i < lines.size(); ++i)
    input.push_back({"words", static_cast<int32_t>(i % 4), std::nullopt, lines[i],
                     t0 + static_cast<int64_t>(i) * 1000});
  env.produce(input);

  system_fixture fx;
  auto def = castor::dags::wordcount({{"words", "words", start_policy::earliest()}},
                                     {{"counts", "counts"}});
  REQUIRE(def);
  auto pipeline = fx.run(*def, env.config());
  // Cycles may take several lines at once: one update per distinct word
  // per cycle, the latest count last.
  auto s = wait_until(*fx.sys, pipeline, [](auto& s) {
    return s.live && s.released == 4 && s.produced > 0 && s.delivered == s.produced;
  });
  auto out = env.read("counts", s.delivered);
  REQUIRE(out.size() == s.delivered);
  std::map<std::string, std::string> latest;
  for (auto& r : out)
    latest[*r.key] = *r.value;
  CHECK(latest.size() == 9);
  CHECK(latest["the"] == "3");
  CHECK(latest["fox"] == "2");
  CHECK(latest["dog"] == "2");
  CHECK(latest["quick"] == "1");
  CHECK(s.consumed == 4);
  stop_and_wait(*fx.sys, pipeline);
}

TEST_CASE("two topics with interleaved timestamps replay in global timestamp order",
          "[integration][pipeline]") {
  // Three partitions in all; each partition's timestamps increase, the
  // topics interleave, and some timestamps tie across topics.
  kafka_env env{{{"a", 2}, {"b", 1}, {"merged", 1}}};
  std::vector<record> input;
  for (int i = 0; i < 300; ++i) {
    input.push_back({"a", i % 2, "a" + std::to_string(i), "va" + std::to_string(i),
                     t0 + i * 10 + (i % 2)});
    input.push_back({"b",
                     0,
                     "b" + std::to_string(i),
                     "vb" + std::to_string(i),
                     t0 + i * 10 + 1,
                     {{"h", "x"}, {"null", std::nullopt}}});
  }
  env.produce(input);

  system_fixture fx;
  auto def = castor::dags::merge(
      {{"a", "a", start_policy::earliest()}, {"b", "b", start_policy::earliest()}},
      {{"out", "merged"}});
  REQUIRE(def);
  auto cfg = env.config();
  cfg.batch_size = 50;
  auto pipeline = fx.run(*def, cfg);
  auto out = env.read("merged", input.size());
  REQUIRE(out.size() == input.size());
  // Global (timestamp, topic, partition, offset) order, each message once.
  std::vector<std::tuple<int64_t, std::string, int, int64_t>> keys;
  std::set<std::string> seen;
  for (auto& r : out) {
    auto ts = std::stoll(*castor::test::header_of(r, "castor.timestamp"));
    CHECK(r.time_ms == ts);
    keys.emplace_back(ts, *castor::test::header_of(r, "castor.topic"),
                      std::stoi(*castor::test::header_of(r, "castor.partition")),
                      std::stoll(*castor::test::header_of(r, "castor.offset")));
    CHECK(seen.insert(*r.key).second);
  }
  CHECK(std::is_sorted(keys.begin(), keys.end()));
  // Headers, including a null one, pass through.
  auto& first_b =
      *std::find_if(out.begin(), out.end(), [](auto& r) { return r.key == "b0"; });
  CHECK(castor::test::header_of(first_b, "h") == "x");
  CHECK_FALSE(castor::test::header_of(first_b, "null").has_value());
  CHECK(first_b.value == "vb0");
  stop_and_wait(*fx.sys, pipeline);
}

namespace {

// A skewed replay: "ahead" is three hours ahead of "behind" for most of
// its data, 2,000 messages each with values of `value_bytes`, merged at
// batch_size 20 (cap: 100 held) within `budget` (engine.memory_budget).
// Checks that every message comes out once, in order, after pauses and
// resumes; returns the stats once live.
castor::pipeline_stats skewed_replay(size_t value_bytes, size_t budget) {
  kafka_env env{{{"ahead", 2}, {"behind", 1}, {"merged", 1}}};
  std::vector<record> input;
  const int64_t hour = 3'600'000;
  for (int i = 0; i < 2000; ++i) {
    input.push_back({"behind", 0, "b" + std::to_string(i), std::string(value_bytes, 'x'),
                     t0 + i * 1000});
    input.push_back({"ahead", i % 2, "a" + std::to_string(i),
                     std::string(value_bytes, 'y'), t0 + 3 * hour + i * 1000});
  }
  // In 20 writes, each its own record batches, and fetched a batch at a
  // time: "behind" cannot arrive whole before "ahead" has shown anything
  // (its messages would then all be released at once, with no pause).
  for (size_t i = 0; i < input.size(); i += 200)
    env.produce(
        {input.begin() + static_cast<ptrdiff_t>(i),
         input.begin() + static_cast<ptrdiff_t>(std::min(i + 200, input.size()))});

  system_fixture fx;
  auto def = castor::dags::merge({{"ahead", "ahead", start_policy::earliest()},
                                  {"behind", "behind", start_policy::earliest()}},
                                 {{"out", "merged"}});
  REQUIRE(def);
  auto cfg = env.config();
  cfg.consumer["max.partition.fetch.bytes"] = std::to_string(2048 + value_bytes);
  // Whatever the budget, librdkafka's queues as in the test with 1-byte values.
  cfg.consumer["fetch.max.bytes"] = "1048576";
  cfg.consumer["queued.max.messages.kbytes"] = "8192";
  cfg.producer["queue.buffering.max.kbytes"] = "65536";
  cfg.batch_size = 20;
  cfg.memory_budget = budget;
  auto pipeline = fx.run(*def, cfg);
  auto out = env.read("merged", input.size(), 60s);
  REQUIRE(out.size() == input.size());
  std::vector<std::pair<int64_t, std::string>> order;
  std::set<std::string> keys;
  for (auto& r : out) {
    order.emplace_back(r.time_ms, *castor::test::header_of(r, "castor.topic"));
    keys.insert(*r.key);
  }
  CHECK(keys.size() == input.size());
  CHECK(std::is_sorted(order.begin(), order.end()));
  auto s = wait_until(*fx.sys, pipeline, [](auto& s) { return s.live; });
  CHECK(s.pauses > 0);
  CHECK(s.resumes > 0);
  CHECK(s.released == input.size());
  CHECK(s.held == 0);
  CHECK(s.held_bytes == 0);
  stop_and_wait(*fx.sys, pipeline);
  return s;
}

} // namespace

TEST_CASE(
    "a skewed replay holds no more than the cap plus three batches, pauses, resumes and "
    "delivers every message once in order",
    "[integration][pipeline]") {
  auto s = skewed_replay(1, castor::defaults::memory_budget);
  // The cap plus three batches (the stuck messages, and a batch of room
  // for the partitions holding the watermark back), plus at most one
  // message per partition that had delivered nothing yet when the cap was
  // reached (one of the three here).
  CHECK(s.held_peak >= 100);
  CHECK(s.held_peak <= 100 + 3 * 20 + 3);
}

TEST_CASE("with large messages, a skewed replay holds the cap plus three batches in "
          "units of its memory budget: bounded in bytes",
          "[integration][pipeline]") {
  // Values of 1,000 bytes (keys of 2 to 5), a unit of the hold per 250
  // bytes started: 5 units a message, the cap (100 units) 20 messages.
  // Bound: (cap + 3 batches = 160 units) x 250 bytes + one message per
  // partition; in messages that is 32 + 3, where the budget's default
  // unit (1,220 bytes) allows 163.
  castor::watermark_config w;
  w.batch_size = 20;
  const size_t budget = 250 * 4 * w.units_bound(castor::defaults::releases_in_flight);
  REQUIRE(castor::hold_unit_bytes(budget, w, castor::defaults::releases_in_flight) ==
          250);
  auto s = skewed_replay(1000, budget);
  INFO("held peak " << s.held_peak << " messages, " << s.held_bytes_peak << " bytes");
  CHECK(s.held_peak >= 20);
  CHECK(s.held_peak <= 160 / 5 + 3);
  CHECK(s.held_bytes_peak >= 20 * 1002);
  CHECK(s.held_bytes_peak <= 160 * 250 + 3 * 1005);
}

TEST_CASE("after catching up, a newly produced message's result comes out",
          "[integration][pipeline]") {
  kafka_env env{{{"words", 1}, {"counts", 1}}};
  env.produce({{"words", 0, std::nullopt, "hello world", t0}});
  system_fixture fx;
  auto def = castor::dags::wordcount({{"words", "words", start_policy::earliest()}},
                                     {{"counts", "counts"}});
  REQUIRE(def);
  auto pipeline = fx.run(*def, env.config());
  REQUIRE(env.read("counts", 2).size() == 2);
  wait_until(*fx.sys, pipeline, [](auto& s) { return s.live; });
  auto now_ms = castor::to_millis(castor::wall_clock_now());
  env.produce({{"words", 0, std::nullopt, "hello", now_ms}});
  auto out = env.read("counts", 3, 5s);
  REQUIRE(out.size() == 3);
  CHECK(out.back().key == "hello");
  CHECK(out.back().value == "2");
  stop_and_wait(*fx.sys, pipeline);
}

TEST_CASE("an unknown source topic stops the pipeline with an error naming it",
          "[integration][pipeline]") {
  kafka_env env{{{"counts", 1}}};
  system_fixture fx;
  auto def = castor::dags::wordcount(
      {{"words", "no-such-topic", start_policy::earliest()}}, {{"counts", "counts"}});
  REQUIRE(def);
  auto pipeline = fx.run(*def, env.config());
  auto err = castor::wait_for(*fx.sys, pipeline);
  REQUIRE(err);
  CHECK_THAT(castor::render(err), Catch::Contains("no-such-topic"));
}

TEST_CASE("time start policies find their offsets on the mock cluster (by bisection)",
          "[integration][pipeline]") {
  kafka_env env{{{"in", 2}, {"out", 1}}};
  std::vector<record> input;
  for (int i = 0; i < 40; ++i)
    input.push_back({"in", i % 2, "k" + std::to_string(i), "v", t0 + i * 1000});
  env.produce(input);
  system_fixture fx;
  // From t0 + 30 s: messages 30..39, five per partition.
  auto def = castor::dags::copy(
      {{"in", "in", start_policy::absolute_time(castor::from_millis(t0 + 30'000))}},
      {{"out", "out"}});
  REQUIRE(def);
  auto pipeline = fx.run(*def, env.config());
  auto s =
      wait_until(*fx.sys, pipeline, [](auto& s) { return s.live && s.delivered == 10; });
  CHECK(s.consumed == 10);
  auto out = env.read("out", 10);
  REQUIRE(out.size() == 10);
  CHECK(out.front().key == "k30");
  CHECK(out.back().key == "k39");
  stop_and_wait(*fx.sys, pipeline);
}

TEST_CASE("positions: trades and prices give positions and a mark to market every minute",
          "[integration][pipeline]") {
  kafka_env env{{{"trades", 1}, {"prices", 2}, {"positions", 1}, {"marks", 1}}};
  auto trade = [](const char* sym, double q, double px) {
    return fmt::format(R"({{"symbol":"{}","quantity":{},"price":{}}})", sym, q, px);
  };
  auto price = [](const char* sym, double px) {
    return fmt::format(R"({{"symbol":"{}","price":{}}})", sym, px);
  };
  // Recent data (timers catch up minute by minute to the wall clock once
  // live: old data would mark every minute since).
  auto base = std::chrono::floor<std::chrono::minutes>(castor::wall_clock_now()) -
              std::chrono::minutes{3};
  auto at = [&](int seconds) {
    return castor::to_millis(base + std::chrono::seconds{seconds});
  };
  env.produce({{"trades", 0, std::nullopt, trade("ACME", 10, 100), at(10)},
               {"prices", 0, std::nullopt, price("ACME", 105), at(30)},
               {"trades", 0, std::nullopt, trade("ACME", -4, 110), at(70)},
               {"prices", 1, std::nullopt, price("ACME", 120), at(90)},
               {"prices", 0, std::nullopt, price("ACME", 130), at(150)}});
  system_fixture fx;
  auto def =
      castor::dags::positions_dag({{"trades", "trades", start_policy::earliest()},
                                   {"prices", "prices", start_policy::earliest()}},
                                  {{"positions", "positions"}, {"marks", "marks"}});
  REQUIRE(def);
  auto pipeline = fx.run(*def, env.config());
  auto positions = env.read("positions", 2);
  REQUIRE(positions.size() == 2);
  CHECK(nlohmann::json::parse(*positions[1].value)["position"] == 6.0);
  // Minutes 1 and 2 of the data (cycle times base+60s, base+120s), then
  // minute 3 and on as live.
  auto marks = env.read("marks", 2);
  REQUIRE(marks.size() == 2);
  auto first = nlohmann::json::parse(*marks[0].value);
  auto second = nlohmann::json::parse(*marks[1].value);
  CHECK(first["time"] == castor::to_string(base + std::chrono::minutes{1}));
  CHECK(first["position"] == 10.0);
  CHECK(first["price"] == 105.0);
  CHECK(first["pnl"] == 50.0);
  CHECK(second["time"] == castor::to_string(base + std::chrono::minutes{2}));
  CHECK(second["position"] == 6.0);
  CHECK(second["price"] == 120.0);
  CHECK(second["pnl"] == 6 * 120.0 - (1000.0 - 440.0));
  stop_and_wait(*fx.sys, pipeline);
}

TEST_CASE("positions: one trade stamped 2100 neither runs away with memory nor stalls: "
          "the minute timer stops catching up and the pipeline keeps answering",
          "[integration][pipeline]") {
  kafka_env env{{{"trades", 2}, {"prices", 2}, {"positions", 1}, {"marks", 1}}};
  auto base = std::chrono::floor<std::chrono::minutes>(castor::wall_clock_now()) -
              std::chrono::hours{1};
  auto at = [&](int seconds) {
    return castor::to_millis(base + std::chrono::seconds{seconds});
  };
  std::vector<record> input;
  for (int i = 0; i < 200; ++i) {
    auto json = fmt::format(R"({{"symbol":"S{}","quantity":1,"price":{}}})", i % 5, i);
    input.push_back({"trades", i % 2, std::nullopt, json, at(i)});
    input.push_back({"prices", i % 2, std::nullopt,
                     fmt::format(R"({{"symbol":"S{}","price":{}}})", i % 5, i), at(i)});
  }
  // 2100-01-01, then more ordinary trades behind it on the same partition.
  input.push_back({"trades", 0, std::nullopt, R"({"symbol":"S1","quantity":1,"price":1})",
                   4'102'444'800'000});
  for (int i = 0; i < 20; ++i)
    input.push_back({"trades", 0, std::nullopt,
                     R"({"symbol":"S1","quantity":1,"price":1})", at(300 + i)});
  env.produce(input);
  system_fixture fx;
  auto def =
      castor::dags::positions_dag({{"trades", "trades", start_policy::earliest()},
                                   {"prices", "prices", start_policy::earliest()}},
                                  {{"positions", "positions"}, {"marks", "marks"}});
  REQUIRE(def);
  auto cfg = env.config();
  cfg.batch_size = 5; // small releases: the 2100 trade is released in replay
  cfg.timer_catch_up = 1000;
  auto pipeline = fx.run(*def, cfg);
  auto s = wait_until(
      *fx.sys, pipeline, [&](auto& s) { return s.live && s.released == input.size(); },
      60s);
  CHECK(s.timer_skips >= 1);
  // A mark per symbol per minute for 1,000 minutes at most, not 40 million.
  CHECK(s.produced < 20'000);
  stop_and_wait(*fx.sys, pipeline);
}
