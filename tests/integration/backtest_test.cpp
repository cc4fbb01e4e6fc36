// SPDX-License-Identifier: Apache-2.0
// Bounded replays (docs/pipeline.md, "Backtests") against the mock cluster,
// in process: a pipeline with a stop exits by itself with exactly the
// messages before the stop; an embedder that stops on live_atom loses
// nothing of the replay.

#include "castor/dags/builtin.hpp"
#include "castor/pipeline.hpp"

#include <caf/event_based_actor.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <atomic>
#include <set>
#include <thread>

#include "kafka_env.hpp"
#include "pipeline_fixture.hpp"

using namespace std::chrono_literals;
using castor::start_policy;
using castor::stop_policy;
using castor::test::kafka_env;
using castor::test::record;
using castor::test::system_fixture;
using castor::test::t0;

namespace {

castor::pipeline_definition_ptr copy_of(const std::string& in, const std::string& out,
                                        start_policy start = start_policy::earliest()) {
  auto def = castor::dags::make("copy", {{in, in, std::move(start)}}, {{"out", out}});
  REQUIRE(def);
  return *def;
}

// Waits for the pipeline to exit by itself (fails, and kills it, after
// `timeout`); returns its exit reason.
caf::error exits_by_itself(caf::actor_system& sys, const castor::pipeline_actor& p,
                           std::chrono::seconds timeout = 30s) {
  caf::scoped_actor self{sys};
  self->monitor(p);
  caf::error reason;
  bool exited = false;
  self->receive(
      [&](caf::down_msg& dm) {
        reason = std::move(dm.reason);
        exited = true;
      },
      caf::after(timeout) >> [&] {});
  if (!exited)
    caf::anon_send_exit(p, caf::exit_reason::kill);
  REQUIRE(exited);
  return reason;
}

std::set<std::string> keys_of(const std::vector<record>& records) {
  std::set<std::string> keys;
  for (auto& r : records)
    keys.insert(r.key.value_or(""));
  return keys;
}

} // namespace

TEST_CASE("backtest: stop at the end offsets reads exactly the history while a producer "
          "keeps writing, and exits by itself",
          "[integration][backtest]") {
  kafka_env env{{{"in", 3}, {"out", 1}}};
  std::vector<record> history;
  for (int i = 0; i < 3000; ++i)
    history.push_back({"in", i % 3, fmt::format("h{}", i), "v", t0 + i});
  env.produce(history);
  std::atomic<bool> writing{true};
  std::thread writer{[&] {
    auto w = castor::testing::writer::make(env.bootstrap(), {{"linger.ms", "0"}});
    REQUIRE(w);
    for (int i = 0; writing; ++i) {
      (void)(*w)->write({"in", i % 3, fmt::format("live{}", i), "v",
                         castor::to_millis(castor::wall_clock_now())});
      std::this_thread::sleep_for(1ms);
    }
    (void)(*w)->flush();
  }};
  // Live messages before the start, too: wait until the broker has some
  // (a loaded machine may take a while).
  for (auto deadline = std::chrono::steady_clock::now() + 20s;
       std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(50ms)) {
    auto sofar = castor::testing::read_all(env.bootstrap(), "in");
    REQUIRE(sofar);
    if (sofar->size() > history.size() + 10)
      break;
  }
  system_fixture fx;
  auto cfg = env.config();
  cfg.stop = stop_policy::at_end();
  castor::pipeline_stats last;
  cfg.on_exit = [&](const castor::pipeline_stats& s, const caf::error&) { last = s; };
  auto pipeline = fx.run(copy_of("in", "out"), cfg);
  auto reason = exits_by_itself(*fx.sys, pipeline);
  writing = false;
  writer.join();
  CHECK_FALSE(reason);
  // Whatever each partition held below its end offset at start-up.
  auto all = castor::testing::read_all(env.bootstrap(), "in");
  REQUIRE(all);
  std::set<std::string> expected;
  int64_t total = 0;
  for (auto& p : last.partitions) {
    total += p.end_offset - p.start_offset;
    CHECK(p.finished);
    CHECK(p.next_offset == p.end_offset);
    for (auto& r : *all)
      if (r.partition == p.partition && r.offset < p.end_offset)
        expected.insert(*r.key);
  }
  CHECK(expected.size() > history.size()); // some live messages came before the start
  auto out = env.read("out", expected.size());
  CHECK(keys_of(out) == expected);
  CHECK(out.size() == expected.size());
  CHECK(last.released == static_cast<uint64_t>(total));
  CHECK(last.finished);
}

TEST_CASE("backtest: a window from a start time to a stop time holds exactly "
          "T1 <= ts < T2, in order",
          "[integration][backtest]") {
  kafka_env env{{{"a", 2}, {"b", 1}, {"out", 1}}};
  std::vector<record> input;
  for (int i = 0; i < 900; ++i)
    input.push_back({i % 3 == 2 ? "b" : "a", i % 3 == 2 ? 0 : i % 3,
                     fmt::format("m{}", i), "v", t0 + i * 100});
  env.produce(input);
  auto t1 = castor::timestamp{std::chrono::milliseconds{t0 + 10'000}};
  auto t2 = castor::timestamp{std::chrono::milliseconds{t0 + 50'000}};
  auto def = castor::dags::make("merge",
                                {{"a", "a", start_policy::absolute_time(t1)},
                                 {"b", "b", start_policy::absolute_time(t1)}},
                                {{"out", "out"}});
  REQUIRE(def);
  system_fixture fx;
  auto cfg = env.config();
  cfg.stop = stop_policy::at(t2);
  cfg.batch_size = 37;
  auto pipeline = fx.run(*def, cfg);
  CHECK_FALSE(exits_by_itself(*fx.sys, pipeline));
  auto out = env.read("out", 400);
  REQUIRE(out.size() == 400);
  for (size_t i = 0; i < out.size(); ++i) {
    CHECK(out[i].time_ms == t0 + 10'000 + static_cast<int64_t>(i) * 100);
    CHECK(*out[i].key == fmt::format("m{}", 100 + i));
  }
}

TEST_CASE("backtest: a stop time still ahead waits live for it, takes what comes before "
          "and nothing at or after",
          "[integration][backtest]") {
  kafka_env env{{{"in", 2}, {"out", 1}}};
  env.produce({{"in", 0, "old", "v", t0}});
  system_fixture fx;
  auto cfg = env.config();
  auto stop = castor::wall_clock_now() + 3s;
  cfg.stop = stop_policy::at(stop);
  auto pipeline = fx.run(copy_of("in", "out"), cfg);
  castor::test::wait_until(*fx.sys, pipeline, [](auto& s) { return s.live; });
  auto now_ms = castor::to_millis(castor::wall_clock_now());
  env.produce({{"in", 1, "before", "v", now_ms},
               {"in", 0, "after", "v", castor::to_millis(stop) + 60'000}});
  auto started = std::chrono::steady_clock::now();
  CHECK_FALSE(exits_by_itself(*fx.sys, pipeline, 20s));
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  auto out = castor::testing::read_all(env.bootstrap(), "out");
  REQUIRE(out);
  CHECK(keys_of(*out) == std::set<std::string>{"old", "before"});
}

TEST_CASE("backtest: an embedder that stops on live_atom loses nothing of the replay",
          "[integration][backtest]") {
  kafka_env env{{{"words", 4}, {"counts", 1}}};
  std::vector<record> input;
  for (int i = 0; i < 40'000; ++i)
    input.push_back({"words", i % 4, std::nullopt, fmt::format("w{} x", i % 50), t0 + i});
  env.produce(input);
  system_fixture fx;
  auto cfg = env.config();
  cfg.batch_size = 500;
  castor::pipeline_stats last;
  cfg.on_exit = [&](const castor::pipeline_stats& s, const caf::error&) { last = s; };
  // The host's actor: stops the pipeline the moment it hears live_atom.
  auto pipeline_slot = std::make_shared<castor::pipeline_actor>();
  cfg.listener = fx.sys->spawn([pipeline_slot](caf::event_based_actor*) -> caf::behavior {
    return {
        [pipeline_slot](castor::live_atom) {
          caf::anon_send(*pipeline_slot, castor::stop_atom::value);
        },
        [](const castor::pipeline_stats&) {},
    };
  });
  auto def =
      castor::dags::make("wordcount", {{"words", "words", start_policy::earliest()}},
                         {{"counts", "counts"}});
  REQUIRE(def);
  *pipeline_slot = fx.run(*def, cfg);
  CHECK_FALSE(exits_by_itself(*fx.sys, *pipeline_slot));
  CHECK(last.consumed == input.size());
  CHECK(last.released == input.size());
  CHECK(last.waiting == 0);
  CHECK(last.delivered == last.produced);
  // The last count of every word is its count in the input.
  auto out = castor::testing::read_all(env.bootstrap(), "counts");
  REQUIRE(out);
  std::map<std::string, int> latest;
  for (auto& r : *out)
    latest[*r.key] = std::stoi(*r.value);
  CHECK(latest["x"] == 40'000);
  CHECK(latest["w7"] == 800);
}

TEST_CASE(
    "backtest: pacing holds through the switch to live: what was held at the switch "
    "goes at its paced time too",
    "[integration][backtest]") {
  kafka_env env{{{"in", 2}, {"out", 1}}};
  std::vector<record> input;
  for (int i = 0; i <= 30; ++i) // 3 s of event time
    input.push_back({"in", i % 2, fmt::format("p{}", i), "v", t0 + i * 100});
  env.produce(input);
  system_fixture fx;
  auto cfg = env.config();
  cfg.replay_speed = 2; // 1.5 s of wall time; all of it held at the switch to live
  auto started = std::chrono::steady_clock::now();
  auto pipeline = fx.run(copy_of("in", "out"), cfg);
  castor::test::wait_until(*fx.sys, pipeline,
                           [&](auto& s) { return s.released == input.size(); });
  auto elapsed = std::chrono::steady_clock::now() - started;
  CHECK(elapsed >= 1400ms);
  CHECK(elapsed < 10s);
  castor::test::stop_and_wait(*fx.sys, pipeline);
}
