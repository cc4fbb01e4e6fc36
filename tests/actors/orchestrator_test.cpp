// SPDX-License-Identifier: Apache-2.0
// The watermark orchestrator on the deterministic scheduler: releases,
// credit, idleness, the live switch, progress lines (neighbours mocked).

#include "castor/orchestrator.hpp"

#include <sstream>

#include "fixtures.hpp"

using namespace castor::test;

namespace {

struct orchestrator_fixture : test_system {
  std::shared_ptr<consumer_log> clog = std::make_shared<consumer_log>();
  std::shared_ptr<executor_log> elog = std::make_shared<executor_log>();
  std::shared_ptr<feeder_log> flog = std::make_shared<feeder_log>();
  castor::orchestrator_actor orch;
  castor::executor_actor exec;
  caf::actor feed;
  caf::actor listener;
  std::shared_ptr<int> live_reports = std::make_shared<int>(0);

  explicit orchestrator_fixture(size_t batch_size,
                                std::vector<std::pair<std::string, int64_t>> parts,
                                bool group = false) {
    auto reports = live_reports;
    listener = spawn([reports]() -> caf::behavior {
      return {[reports](castor::live_atom) { ++*reports; }};
    });
    castor::orchestrator_config cfg;
    cfg.watermark.batch_size = batch_size;
    cfg.watermark.idle_timeout = 10s;
    cfg.tick_interval = 1s;
    cfg.progress_interval = 2s;
    cfg.listener = listener;
    cfg.watermark.group = group;
    exec = spawn(mock_executor, elog);
    orch = spawn(castor::orchestrator, cfg, exec);
    auto cons = spawn(mock_consumer, clog);
    feed = spawn(feeder, orch, flog);
    caf::anon_send(orch, castor::start_atom::value, table_of(std::move(parts)), cons);
    run();
  }

  void send(castor::consumed_batch_ptr batch) {
    caf::anon_send(feed, std::move(batch));
    run();
  }

  /// `n` messages of partition `pid`, 100 s ahead of t0 and 1 s apart.
  void send_ahead(uint32_t pid, int64_t n) {
    std::vector<std::tuple<uint32_t, int64_t, timestamp>> ahead;
    for (int64_t i = 0; i < n; ++i)
      ahead.emplace_back(pid, i, t0 + 100s + std::chrono::seconds{i});
    send(batch_of(ahead));
  }
};

} // namespace

TEST_CASE(
    "orchestrator actor: forwards the partition table and releases in timestamp order",
    "[actors][orchestrator]") {
  orchestrator_fixture fx{100, {{"a", 100}, {"b", 100}}};
  REQUIRE(fx.elog->table);
  CHECK(fx.elog->table->partitions.size() == 2);
  fx.send(batch_of({{0, 0, t0 + 1s}, {0, 1, t0 + 3s}, {1, 0, t0 + 2s}}));
  REQUIRE(fx.elog->releases.size() == 1);
  CHECK(values_of(*fx.elog->releases[0]) == std::vector<std::string>{"0:0", "1:0"});
  CHECK(fx.elog->releases[0]->watermark == t0 + 2s);
  CHECK_FALSE(fx.elog->releases[0]->live);
  // The consumer's credit: a full batch.
  CHECK(fx.flog->credits == std::vector<uint32_t>{100});
}

TEST_CASE(
    "orchestrator actor: pauses partitions ahead at the cap and resumes them once the "
    "watermark catches up",
    "[actors][orchestrator]") {
  orchestrator_fixture fx{2, {{"a", 100}, {"b", 100}}}; // cap 10
  fx.send_ahead(1, 10);
  REQUIRE(fx.clog->pauses.size() == 1);
  CHECK(fx.clog->pauses[0] == std::vector<uint32_t>{1});
  // Nothing releasable at the cap, and partition 0 has said nothing: a
  // credit of one message, for it to speak (while a partition is silent,
  // what is read stays within the cap: watermark_core's allowance).
  CHECK(fx.flog->credits.back() == 1);
  fx.send(batch_of({{0, 0, t0 + 120s}}));
  CHECK(fx.clog->resumes.size() == 1);
  CHECK(fx.clog->resumes[0] == std::vector<uint32_t>{1});
}

TEST_CASE("orchestrator actor: withholds the consumer's credit at the cap until releases "
          "are acknowledged",
          "[actors][orchestrator]") {
  orchestrator_fixture fx{2, {{"a", 100}, {"b", 100}}};
  fx.elog->hold = true;
  std::vector<std::tuple<uint32_t, int64_t, timestamp>> both;
  for (int64_t i = 0; i < 6; ++i) {
    both.emplace_back(0, i, t0 + std::chrono::seconds{i});
    both.emplace_back(1, i, t0 + std::chrono::seconds{i});
  }
  fx.send(batch_of(both));
  // Two releases in flight, 12 - 4 = 8 held: below the cap, credit given.
  CHECK(fx.elog->releases.size() == 2);
  CHECK(fx.flog->credits.size() == 1);
  fx.send(batch_of({{0, 6, t0 + 6s}, {1, 6, t0 + 6s}, {0, 7, t0 + 7s}, {1, 7, t0 + 7s}}));
  CHECK(fx.flog->credits.size() == 1); // 12 held, releasable, executor busy
  caf::anon_send(fx.exec, castor::timer_atom::value);
  fx.run();
  CHECK(fx.flog->credits.size() == 2);
}

TEST_CASE("orchestrator actor: a silent partition stops holding the watermark back after "
          "the idle timeout while the broker answers (virtual time)",
          "[actors][orchestrator]") {
  log_capture logs;
  orchestrator_fixture fx{100, {{"a", 100}, {"b", 100}}};
  // Partition 0 keeps delivering (the broker answers), partition 1 is silent.
  for (int64_t s = 0; s < 10; ++s) {
    fx.send(batch_of({{0, s, t0 + std::chrono::seconds{s + 1}}}));
    fx.sched->advance_time(1s);
    fx.run();
  }
  CHECK(fx.elog->releases.empty());
  fx.send(batch_of({{0, 10, t0 + 11s}}));
  REQUIRE(fx.elog->releases.size() == 1);
  CHECK(values_of(*fx.elog->releases[0]).front() == "0:0");
  CHECK_THAT(logs.text(), Catch::Contains("b[0] delivered nothing for 10s"));
}

TEST_CASE("orchestrator actor: a frozen broker (no answers at all for longer than the "
          "idle timeout) does not relax replay order",
          "[actors][orchestrator]") {
  orchestrator_fixture fx{100, {{"a", 100}, {"b", 100}}};
  fx.send(batch_of({{0, 0, t0 + 1s}}));
  // 35 s without any answer from the broker (idle timeout 10 s).
  for (int i = 0; i < 35; ++i) {
    fx.sched->advance_time(1s);
    fx.run();
  }
  CHECK(fx.elog->releases.empty());
  // The broker is back: both partitions deliver, in order.
  fx.send(batch_of({{1, 0, t0 + 2s}, {0, 1, t0 + 3s}}));
  REQUIRE(fx.elog->releases.size() == 1);
  CHECK(values_of(*fx.elog->releases[0]) == std::vector<std::string>{"0:0", "1:0"});
}

TEST_CASE(
    "orchestrator actor: reports the switch to live once, then releases as messages "
    "arrive",
    "[actors][orchestrator]") {
  log_capture logs;
  orchestrator_fixture fx{100, {{"a", 1}, {"b", 1}}};
  fx.send(batch_of({{0, 0, t0 + 2s}, {1, 0, t0 + 1s}}));
  CHECK(*fx.live_reports == 1);
  // Not "watermark -inf".
  CHECK_THAT(logs.text(), Catch::Contains("live (all at once, before any watermark)"));
  REQUIRE(fx.elog->releases.size() == 1);
  CHECK(fx.elog->releases[0]->live);
  CHECK(values_of(*fx.elog->releases[0]) == std::vector<std::string>{"1:0", "0:0"});
  fx.send(batch_of({{0, 1, t0 + 9s}}));
  CHECK(*fx.live_reports == 1);
  REQUIRE(fx.elog->releases.size() == 2);
  CHECK(values_of(*fx.elog->releases[1]) == std::vector<std::string>{"0:1"});
}

TEST_CASE("orchestrator actor: end of partition counts as caught up",
          "[actors][orchestrator]") {
  orchestrator_fixture fx{100, {{"a", 100}, {"b", 100}}};
  fx.send(batch_of({{0, 0, t0 + 1s}}));
  CHECK(fx.elog->releases.empty());
  fx.send(batch_of({}, {1}));
  REQUIRE(fx.elog->releases.size() == 1);
  CHECK(values_of(*fx.elog->releases[0]) == std::vector<std::string>{"0:0"});
}

TEST_CASE(
    "orchestrator actor: logs replay progress per topic with watermark, rate and ETA",
    "[actors][orchestrator]") {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto previous = castor::logger();
  castor::set_logger(std::make_shared<spdlog::logger>("castor", sink));
  {
    orchestrator_fixture fx{100, {{"a", 10}, {"b", 4}}};
    fx.send(batch_of({{0, 0, t0 + 1s},
                      {0, 1, t0 + 2s},
                      {0, 2, t0 + 3s},
                      {0, 3, t0 + 4s},
                      {0, 4, t0 + 5s},
                      {1, 0, t0 + 1s}}));
    fx.sched->advance_time(1s);
    fx.run();
    fx.sched->advance_time(1s);
    fx.run();
  }
  castor::set_logger(previous);
  auto text = out.str();
  CHECK_THAT(text, Catch::Contains("replay: a 50.0%, b 25.0%"));
  CHECK_THAT(text, Catch::Contains("watermark 2026-01-01T00:00:01.000Z"));
  CHECK_THAT(text, Catch::Contains("3 msg/s; 8 left, ETA 3s"));
}

TEST_CASE("orchestrator actor: releases say up to when the input is complete, and the "
          "switch to live sends a release even with nothing held",
          "[actors][orchestrator]") {
  orchestrator_fixture fx{100, {{"a", 1}, {"b", 2}}};
  // a is caught up; b may still send more at t0 + 2 s.
  fx.send(batch_of({{0, 0, t0 + 1s}, {1, 0, t0 + 2s}}));
  REQUIRE(fx.elog->releases.size() == 1);
  CHECK(values_of(*fx.elog->releases[0]) == std::vector<std::string>{"0:0", "1:0"});
  CHECK(fx.elog->releases[0]->complete_until == t0 + 2s - castor::duration{1});
  // b ends: live, with nothing held. The executor still has to hear it,
  // or t0 + 2 s (which it holds back as not complete) would wait for the
  // next live message.
  fx.send(batch_of({}, {1}));
  REQUIRE(fx.elog->releases.size() == 2);
  CHECK(fx.elog->releases[1]->messages.empty());
  CHECK(fx.elog->releases[1]->live);
  CHECK(fx.elog->releases[1]->complete_until == castor::timestamp::max());
}

TEST_CASE(
    "orchestrator actor: with a group, only assigned partitions count; a revocation "
    "drops what is held of them and answers after the executor",
    "[actors][orchestrator][group]") {
  orchestrator_fixture fx{2, {{"a", 100}, {"b", 100}}, true}; // cap 10
  auto rlog = std::make_shared<revocation_log>();
  auto rev = fx.spawn(revoker<castor::orchestrator_actor>, fx.orch, rlog);
  // Before the first assignment nothing is live.
  caf::anon_send(fx.orch, castor::tick_atom::value);
  fx.run();
  CHECK(*fx.live_reports == 0);
  caf::anon_send(fx.orch, castor::assign_atom::value,
                 std::vector<castor::partition_assignment>{{0, 0, 100, "test"},
                                                           {1, 0, 100, "test"}});
  fx.run();
  // b runs ahead of a at the cap: paused.
  fx.send_ahead(1, 10);
  REQUIRE(fx.clog->pauses.size() == 1);
  CHECK(fx.clog->pauses[0] == std::vector<uint32_t>{1});
  caf::anon_send(rev, castor::revoke_atom::value, std::vector<uint32_t>{1});
  fx.run();
  REQUIRE(rlog->answers.size() == 1);
  CHECK(rlog->answers[0].dropped == 10);
  // The round ends with its (empty) assignment.
  caf::anon_send(fx.orch, castor::assign_atom::value,
                 std::vector<castor::partition_assignment>{});
  fx.run();
  // a alone: its messages go as they come (nothing else bounds them), and
  // the revoked partition is not resumed (the consumer clears it itself).
  fx.send(batch_of({{0, 0, t0 + 1s}, {0, 1, t0 + 2s}}, {0}));
  REQUIRE_FALSE(fx.elog->releases.empty());
  CHECK(values_of(*fx.elog->releases.back()) == std::vector<std::string>{"0:0", "0:1"});
  CHECK(fx.clog->resumes.empty());
  castor::pipeline_stats stats;
  auto probe = fx.spawn([&stats, orch = fx.orch](caf::event_based_actor* self) {
    self->request(orch, caf::infinite, castor::stats_atom::value)
        .then([&stats](castor::pipeline_stats& s) { stats = std::move(s); });
  });
  fx.run();
  CHECK(stats.revoked_dropped == 10);
  CHECK(stats.held == 0);
  CHECK(stats.paused_partitions == 0);
  REQUIRE(stats.partitions.size() == 2);
  CHECK(stats.partitions[0].assigned);
  CHECK_FALSE(stats.partitions[1].assigned);
  // Per topic, the dropped messages were consumed but not released.
  for (auto& t : stats.topics)
    if (t.topic == "b") {
      CHECK(t.consumed == 10);
      CHECK(t.released == 0);
    }
  // Caught up on its only partition (its end was reached): live.
  CHECK(stats.live);
  CHECK(*fx.live_reports == 1);
}
