// SPDX-License-Identifier: Apache-2.0
// The consumer actor against librdkafka's mock cluster, with a mocked
// orchestrator: starts, reads, pauses.

#include "castor/consumer.hpp"

#include <functional>
#include <map>
#include <set>
#include <thread>

#include "fixtures.hpp"
#include "kafka_env.hpp"

using namespace castor::test;

namespace {

struct orchestrator_log {
  castor::partition_table_ptr table;
  std::vector<castor::consumed_batch_ptr> batches;
  uint32_t credit = 3;
};

castor::orchestrator_actor::behavior_type
mock_orchestrator(castor::orchestrator_actor::pointer,
                  std::shared_ptr<orchestrator_log> log) {
  return {
      [log](castor::start_atom, castor::partition_table_ptr table,
            castor::consumer_actor) { log->table = table; },
      [log](castor::consumed_batch_ptr batch) -> uint32_t {
        log->batches.push_back(batch);
        return log->credit;
      },
      [](castor::tick_atom) {},
      [](castor::assign_atom, std::vector<castor::partition_assignment>) {},
      [](castor::revoke_atom, std::vector<uint32_t>) { return castor::revocation{}; },
      [](castor::drain_atom) { return ack_atom::value; },
      [](castor::stats_atom) { return castor::pipeline_stats{}; },
      [](castor::finish_atom) { return ack_atom::value; },
      [](castor::wake_atom) {},
  };
}

// Messages per pid, as (offset, value), and the pids that reported their end.
struct seen_by_orchestrator {
  std::map<uint32_t, std::vector<std::pair<int64_t, std::string>>> messages;
  std::set<uint32_t> ends;
  size_t largest_batch = 0;
  size_t count = 0;
};

seen_by_orchestrator summarize(const orchestrator_log& log) {
  seen_by_orchestrator result;
  for (auto& b : log.batches) {
    result.largest_batch = std::max(result.largest_batch, b->messages.size());
    for (auto& m : b->messages) {
      result.messages[m.pid()].emplace_back(m.offset(), std::string{*m.value()});
      ++result.count;
    }
    for (auto pid : b->end_of_partition)
      result.ends.insert(pid);
  }
  return result;
}

} // namespace

TEST_CASE("consumer actor: resolves starts, reads every partition in offset order within "
          "its credit, and reports ends",
          "[actors][consumer][integration]") {
  castor::test::kafka_env env{{{"in", 2}}};
  std::vector<castor::test::record> input;
  for (int i = 0; i < 10; ++i)
    input.push_back({"in", i % 2, std::nullopt, "m" + std::to_string(i),
                     castor::to_millis(t0) + i * 1000});
  env.produce(input);
  test_system ts;
  auto log = std::make_shared<orchestrator_log>();
  auto orch = ts.spawn(mock_orchestrator, log);
  castor::consumer_config cfg;
  cfg.properties = env.config().consumer;
  cfg.topics.push_back({"in", 0, castor::start_policy::earliest()});
  cfg.batch_size = 100;
  cfg.event_driven = false;
  auto cons = ts.spawn(castor::consumer, cfg, orch, castor::producer_actor{});
  ts.run();
  REQUIRE(log->table);
  REQUIRE(log->table->partitions.size() == 2);
  CHECK(log->table->partitions[0].end_offset == 5);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  auto seen = summarize(*log);
  while ((seen.count < 10 || seen.ends.size() < 2) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms); // librdkafka fetches on its own threads
    caf::anon_send(cons, castor::wake_atom::value);
    ts.run();
    seen = summarize(*log);
  }
  CHECK(seen.count == 10);
  CHECK(seen.ends == std::set<uint32_t>{0, 1});
  CHECK(seen.largest_batch <= 100); // first batch: the initial credit
  for (auto& [pid, ms] : seen.messages) {
    REQUIRE(ms.size() == 5);
    for (size_t i = 0; i < ms.size(); ++i)
      CHECK(ms[i].first == static_cast<int64_t>(i));
  }
  // After the first batch the consumer sends at most its credit (3).
  for (size_t i = 1; i < log->batches.size(); ++i)
    CHECK(log->batches[i]->messages.size() <= 3);
}

TEST_CASE("consumer actor: a paused partition delivers nothing until resumed",
          "[actors][consumer][integration]") {
  castor::test::kafka_env env{{{"in", 2}}};
  test_system ts;
  auto log = std::make_shared<orchestrator_log>();
  log->credit = 100;
  auto orch = ts.spawn(mock_orchestrator, log);
  castor::consumer_config cfg;
  cfg.properties = env.config().consumer;
  cfg.topics.push_back({"in", 0, castor::start_policy::earliest()});
  cfg.event_driven = false;
  auto cons = ts.spawn(castor::consumer, cfg, orch, castor::producer_actor{});
  ts.run();
  caf::anon_send(cons, castor::pause_atom::value, std::vector<uint32_t>{0});
  ts.run();
  env.produce({{"in", 0, std::nullopt, "p0", castor::to_millis(t0)},
               {"in", 1, std::nullopt, "p1", castor::to_millis(t0)}});
  auto pump = [&](std::chrono::milliseconds how_long, auto done) {
    auto deadline = std::chrono::steady_clock::now() + how_long;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
      caf::anon_send(cons, castor::wake_atom::value);
      ts.run();
    }
  };
  pump(5000ms, [&] { return summarize(*log).messages[1].size() == 1; });
  pump(300ms, [] { return false; });
  auto seen = summarize(*log);
  CHECK(seen.messages[1].size() == 1);
  CHECK(seen.messages[0].empty());
  caf::anon_send(cons, castor::resume_atom::value, std::vector<uint32_t>{0});
  ts.run();
  pump(5000ms, [&] { return summarize(*log).messages[0].size() == 1; });
  CHECK(summarize(*log).messages[0] ==
        std::vector<std::pair<int64_t, std::string>>{{0, "p0"}});
}

namespace {

// A replay of `batches` record batches of `per_batch` messages that
// librdkafka's fetcher stops after each (one message of prefetch, one batch
// per fetch; 2.0.2 then looks again only when woken or after up to a
// second), read by a consumer with `tune` applied to its settings: what the
// orchestrator saw, how long it took, and the consumer's fetcher wake-ups.
struct stalled_replay {
  seen_by_orchestrator seen;
  std::chrono::steady_clock::duration took{};
  uint64_t wakeups = 0;
};

stalled_replay replay_stalled(int batches, int per_batch,
                              const std::function<void(castor::consumer_config&)>& tune) {
  castor::test::kafka_env env{{{"in", 1}}};
  for (int b = 0; b < batches; ++b) {
    std::vector<castor::test::record> input;
    for (int i = 0; i < per_batch; ++i)
      input.push_back({"in", 0, std::nullopt, "m" + std::to_string(b * per_batch + i),
                       castor::to_millis(t0) + b * per_batch + i});
    env.produce(input);
  }
  auto total = static_cast<size_t>(batches * per_batch);
  test_system ts;
  auto log = std::make_shared<orchestrator_log>();
  log->credit = static_cast<uint32_t>(std::min<size_t>(total, 1000));
  auto orch = ts.spawn(mock_orchestrator, log);
  castor::consumer_config cfg;
  cfg.properties = env.config().consumer;
  cfg.properties["queued.min.messages"] = "1";
  cfg.properties["max.partition.fetch.bytes"] = "1";
  cfg.memory_budget = 0;
  cfg.topics.push_back({"in", 0, castor::start_policy::earliest()});
  // Woken by librdkafka's queues and by its own checks only.
  cfg.event_driven = true;
  tune(cfg);
  auto started = std::chrono::steady_clock::now();
  auto cons = ts.spawn(castor::consumer, cfg, orch, castor::producer_actor{});
  ts.run();
  auto deadline = started + 30s;
  stalled_replay result;
  result.seen = summarize(*log);
  while (result.seen.count < total && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
    ts.sched->trigger_timeouts(); // the consumer's starvation checks
    ts.run();
    result.seen = summarize(*log);
  }
  result.took = std::chrono::steady_clock::now() - started;
  using actor_type = std::remove_pointer_t<castor::consumer_state::pointer>;
  auto* actor = dynamic_cast<actor_type*>(caf::actor_cast<caf::abstract_actor*>(cons));
  REQUIRE(actor != nullptr);
  result.wakeups = actor->state.stats.fetcher_wakeups;
  return result;
}

} // namespace

TEST_CASE("consumer actor: a consumer starved while the broker holds more wakes "
          "librdkafka's fetcher, which stopped at its prefetch limit",
          "[actors][consumer][integration]") {
  auto r = replay_stalled(20, 10, [](castor::consumer_config&) {});
  REQUIRE(r.seen.count == 200);
  // Twenty stops of up to a second each without the wake-ups (measured:
  // 20 s); well under a second with them.
  CHECK(r.took < 8s);
  for (size_t i = 0; i < 200; ++i)
    CHECK(r.seen.messages[0][i].first == static_cast<int64_t>(i));
  CHECK(r.wakeups > 0);
}

TEST_CASE("consumer actor: a consumer starved while the broker holds far more than "
          "it read wakes the fetcher early, not after fetch_wake_after",
          "[actors][consumer][integration]") {
  // The broker holds 100 to 1,900 messages more than the consumer read at
  // each stop, "far" at 50; only the early wake-up can keep this replay
  // under a minute a stop.
  auto r = replay_stalled(20, 100, [](castor::consumer_config& cfg) {
    cfg.fetch_wake_after = std::chrono::seconds{60};
    cfg.fetch_wake_early = std::chrono::milliseconds{1};
    cfg.fetch_wake_far = 50;
  });
  REQUIRE(r.seen.count == 2000);
  CHECK(r.took < 20s);
  for (size_t i = 0; i < 2000; ++i)
    CHECK(r.seen.messages[0][i].first == static_cast<int64_t>(i));
  CHECK(r.wakeups > 0);
}
