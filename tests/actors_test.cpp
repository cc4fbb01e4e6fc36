// SPDX-License-Identifier: Apache-2.0
// Actor-level tests of the orchestrator and the executor on CAF's
// deterministic test scheduler, with virtual time and their neighbours
// mocked behind the same typed interfaces.

#include "castor/consumer.hpp"
#include "castor/executor.hpp"
#include "castor/logger.hpp"
#include "castor/orchestrator.hpp"
#include "castor/pipeline.hpp"
#include "castor/producer.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kafka_test_util.hpp"

using namespace std::chrono_literals;
using castor::ack_atom;
using castor::consumed_message;
using castor::timestamp;

namespace {

const timestamp t0 = castor::from_millis(1'767'225'600'000);

struct test_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;

  test_system() {
    castor::add_message_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
  }

  void run() { sched->run(); }

  // Spawns and remembers an actor, so the test can end it: the test
  // scheduler runs nothing by itself, and the system waits for every actor.
  template <class... Ts>
  auto spawn(Ts&&... xs) {
    auto handle = sys->spawn(std::forward<Ts>(xs)...);
    spawned.push_back(caf::actor_cast<caf::actor>(handle));
    return handle;
  }

  ~test_system() {
    for (auto& a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::kill);
    sched->run();
  }

  std::vector<caf::actor> spawned;
};

// Captures what castor logs while it lives.
struct log_capture {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> previous = castor::logger();

  log_capture() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    castor::set_logger(std::make_shared<spdlog::logger>("castor", sink));
  }
  ~log_capture() { castor::set_logger(previous); }

  std::string text() const { return out.str(); }
};

// What a mocked consumer saw.
struct consumer_log {
  std::vector<std::vector<uint32_t>> pauses;
  std::vector<std::vector<uint32_t>> resumes;
};

castor::consumer_actor::behavior_type mock_consumer(castor::consumer_actor::pointer,
                                                    std::shared_ptr<consumer_log> log) {
  return {
      [](castor::wake_atom) {},
      [log](castor::pause_atom, std::vector<uint32_t> pids) {
        log->pauses.push_back(pids);
      },
      [log](castor::resume_atom, std::vector<uint32_t> pids) {
        log->resumes.push_back(pids);
      },
      [](castor::commit_atom) {},
      [](castor::commit_atom, caf::timespan) { return ack_atom::value; },
      [](castor::drain_atom) { return ack_atom::value; },
      [](castor::stats_atom) { return castor::pipeline_stats{}; },
  };
}

// What a mocked executor saw; it answers every release at once unless told
// to hold the answers, which it then gives on `timer_atom` (a promise is
// delivered from within its actor).
struct executor_log {
  std::vector<castor::release_batch_ptr> releases;
  std::vector<caf::typed_response_promise<ack_atom>> held;
  bool hold = false;
  castor::partition_table_ptr table;
};

castor::executor_actor::behavior_type mock_executor(castor::executor_actor::pointer self,
                                                    std::shared_ptr<executor_log> log) {
  return {
      [log](castor::start_atom, castor::partition_table_ptr table) {
        log->table = table;
      },
      [self, log](castor::release_batch_ptr batch) -> caf::result<ack_atom> {
        log->releases.push_back(batch);
        if (!log->hold)
          return ack_atom::value;
        auto promise = self->make_response_promise<ack_atom>();
        log->held.push_back(promise);
        return promise;
      },
      [log](castor::timer_atom) {
        for (auto& p : log->held)
          p.deliver(ack_atom::value);
        log->held.clear();
      },
      [](castor::run_atom) {},
      [](castor::drain_atom) { return ack_atom::value; },
      [](castor::stats_atom) { return castor::pipeline_stats{}; },
  };
}

// Sends consumed batches to an orchestrator and keeps the credits.
struct feeder_log {
  std::vector<uint32_t> credits;
};

caf::behavior feeder(caf::event_based_actor* self, castor::orchestrator_actor target,
                     std::shared_ptr<feeder_log> log) {
  return {
      [=](castor::consumed_batch_ptr batch) {
        self->request(target, caf::infinite, std::move(batch)).then([=](uint32_t credit) {
          log->credits.push_back(credit);
        });
      },
  };
}

castor::partition_table_ptr table_of(std::vector<std::pair<std::string, int64_t>> parts) {
  auto table = std::make_shared<castor::partition_table>();
  for (auto& [topic, end] : parts) {
    int32_t p = 0;
    for (auto& e : table->partitions)
      if (e.topic == topic)
        ++p;
    table->partitions.push_back({topic, p, 0, 0, end, "test"});
  }
  return table;
}

castor::consumed_batch_ptr
batch_of(std::vector<std::tuple<uint32_t, int64_t, timestamp>> ms,
         std::vector<uint32_t> eof = {}) {
  auto batch = std::make_shared<castor::consumed_batch>();
  for (auto& [pid, offset, ts] : ms)
    batch->messages.push_back(
        consumed_message::make(pid, offset, ts, std::nullopt,
                               std::to_string(pid) + ":" + std::to_string(offset)));
  batch->end_of_partition = std::move(eof);
  return batch;
}

std::vector<std::string> values_of(const castor::release_batch& batch) {
  std::vector<std::string> result;
  for (auto& m : batch.messages)
    result.emplace_back(*m.value());
  return result;
}

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
                                std::vector<std::pair<std::string, int64_t>> parts) {
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
  std::vector<std::tuple<uint32_t, int64_t, timestamp>> ahead;
  for (int64_t i = 0; i < 10; ++i)
    ahead.emplace_back(1, i, t0 + 100s + std::chrono::seconds{i});
  fx.send(batch_of(ahead));
  REQUIRE(fx.clog->pauses.size() == 1);
  CHECK(fx.clog->pauses[0] == std::vector<uint32_t>{1});
  // Nothing releasable at the cap: the lagging partition may still send, up
  // to cap + batch.
  CHECK(fx.flog->credits.back() == 2);
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

// -- executor -------------------------------------------------------------------

namespace {

struct producer_log {
  std::vector<castor::record_batch_ptr> batches;
  std::vector<caf::typed_response_promise<ack_atom>> held;
  bool hold = false;
};

castor::producer_actor::behavior_type mock_producer(castor::producer_actor::pointer self,
                                                    std::shared_ptr<producer_log> log) {
  return {
      [self, log](castor::record_batch_ptr batch) -> caf::result<ack_atom> {
        log->batches.push_back(batch);
        if (!log->hold)
          return ack_atom::value;
        auto promise = self->make_response_promise<ack_atom>();
        log->held.push_back(promise);
        return promise;
      },
      [](castor::wake_atom) {},
      [log](castor::retry_atom) {
        for (auto& p : log->held)
          p.deliver(ack_atom::value);
        log->held.clear();
      },
      [](castor::flush_atom, caf::timespan) { return uint64_t{0}; },
      [](castor::commit_atom) { return std::vector<int64_t>{}; },
      [](castor::stats_atom) { return castor::pipeline_stats{}; },
  };
}

struct release_feeder_log {
  int acks = 0;
  std::vector<caf::error> errors;
};

caf::behavior release_feeder(caf::event_based_actor* self, castor::executor_actor target,
                             std::shared_ptr<release_feeder_log> log) {
  return {
      [=](castor::release_batch_ptr batch) {
        self->request(target, caf::infinite, std::move(batch))
            .then([=](ack_atom) { ++log->acks; },
                  [=](caf::error& err) { log->errors.push_back(err); });
      },
  };
}

// A DAG: source "in" (strings) -> upper-cased stream -> sink "out"; plus a
// timer that fires at t0 + 10 s and reports the time it fired at.
struct executor_fixture : test_system {
  std::shared_ptr<producer_log> plog = std::make_shared<producer_log>();
  std::shared_ptr<release_feeder_log> flog = std::make_shared<release_feeder_log>();
  std::shared_ptr<std::vector<timestamp>> cycle_times =
      std::make_shared<std::vector<timestamp>>();
  castor::executor_actor exec;
  castor::producer_actor prod;
  caf::actor feed;

  /// `every_second`: the timer fires every second of cycle time (set again
  /// from each cycle), instead of once at t0 + 10 s.
  explicit executor_fixture(castor::executor_config config = {},
                            bool every_second = false) {
    auto graph = std::make_unique<castor::dag>();
    auto in = graph->source_stream<std::vector<std::string>>("in");
    auto upper = graph
                     ->stream([](const std::vector<std::string>& words) {
                       auto out = words;
                       for (auto& w : out)
                         for (auto& c : w)
                           c = static_cast<char>(std::toupper(c));
                       for (auto& w : out)
                         if (w == "BOOM")
                           throw std::runtime_error("boom");
                       return out;
                     })
                     .named("upper")
                     .map(in);
    auto tm = graph->timer_manager();
    auto times = cycle_times;
    auto ticks =
        graph
            ->stream([times, every_second](const castor::timer& t, const timestamp& now,
                                           const std::vector<std::string>& words) {
              times->push_back(now);
              if (every_second && !t.next())
                t.set(now + 1s);
              else if (!every_second && !t.next() && !t.fired())
                t.set(t0 + 10s);
              std::vector<std::string> out;
              if (t.fired())
                out.push_back("timer@" + std::to_string(castor::to_millis(now)));
              (void)words;
              return out;
            })
            .map(tm, graph->now(), in);
    auto out = graph->sink("out", upper);
    auto fired = graph->sink("fired", ticks);
    auto def = std::make_shared<castor::pipeline_definition>(std::move(graph));
    def->source(in, "in", castor::serde::strings(), castor::start_policy::earliest());
    def->sink(out, castor::serde::strings_out(), "out-topic");
    def->sink(fired, castor::serde::strings_out(), "timer-topic");
    prod = spawn(mock_producer, plog);
    exec = spawn(castor::executor, def, prod, config);
    feed = spawn(release_feeder, exec, flog);
    caf::anon_send(exec, castor::start_atom::value, table_of({{"in", 100}}));
    run();
  }

  void release(std::vector<std::pair<int64_t, std::optional<std::string>>> ms,
               timestamp watermark, bool live = false) {
    auto batch = std::make_shared<castor::release_batch>();
    for (auto& [offset, text] : ms) {
      auto ts = t0 + std::chrono::seconds{offset};
      batch->messages.push_back(
          consumed_message::make(0, offset, ts, std::nullopt, text));
      batch->messages.back().order_time = ts;
    }
    batch->watermark = watermark;
    batch->live = live;
    caf::anon_send(feed, std::move(batch));
    run();
  }

  std::vector<std::string> produced(const std::string& topic) const {
    std::vector<std::string> result;
    for (auto& b : plog->batches)
      for (auto& r : b->records)
        if (r.topic == topic)
          result.push_back(r.value.value_or("<null>"));
    return result;
  }

  /// The records of `topic`, whole.
  std::vector<castor::producer_record> records(const std::string& topic) const {
    std::vector<castor::producer_record> result;
    for (auto& b : plog->batches)
      for (auto& r : b->records)
        if (r.topic == topic)
          result.push_back(r);
    return result;
  }
};

std::optional<std::string> header_value(const castor::producer_record& r,
                                        std::string_view name) {
  for (auto& h : r.headers)
    if (h.name == name)
      return h.value;
  return std::nullopt;
}

} // namespace

TEST_CASE("executor actor: dead letters leave in offset order, whatever stage rejected "
          "them",
          "[actors][executor]") {
  castor::executor_config cfg;
  cfg.dead_letter_topic = "dlq";
  cfg.on_deserialize_error = castor::error_policy::dead_letter;
  cfg.on_node_error = castor::error_policy::dead_letter;
  executor_fixture fx{cfg};
  // Offset 3 is rejected by the deserializer (a null value); then the node
  // fails on offset 5, which dead-letters the rest of the cycle (1, 2, 4, 5).
  fx.release({{1, "a"}, {2, "b"}, {3, std::nullopt}, {4, "c"}, {5, "boom"}}, t0 + 5s);
  auto dead = fx.records("dlq");
  REQUIRE(dead.size() == 5);
  std::vector<std::string> offsets;
  for (auto& r : dead)
    offsets.push_back(header_value(r, "castor.dlq.offset").value_or("?"));
  CHECK(offsets == std::vector<std::string>{"1", "2", "3", "4", "5"});
  CHECK(header_value(dead[2], "castor.dlq.stage") == "deserialize:in");
  CHECK(header_value(dead[0], "castor.dlq.stage") == "node:upper");
}

TEST_CASE("executor actor: a release's records go to the producer in batches, with at "
          "most two unanswered",
          "[actors][executor]") {
  castor::executor_config cfg;
  cfg.records_per_batch = 10;
  executor_fixture fx{cfg, true};
  fx.plog->hold = true;
  fx.release({{0, "a"}}, t0);
  caf::anon_send(fx.prod, castor::retry_atom::value);
  fx.run();
  fx.plog->batches.clear();
  // 100 seconds: 100 timer cycles of one record each.
  fx.release({{100, "b"}}, t0 + 100s);
  CHECK(fx.plog->batches.size() == 2);
  CHECK(fx.plog->batches[0]->records.size() == 10);
  CHECK(fx.flog->acks == 1); // the first release only
  for (int round = 0; round < 10 && fx.flog->acks < 2; ++round) {
    caf::anon_send(fx.prod, castor::retry_atom::value);
    fx.run();
  }
  CHECK(fx.flog->acks == 2);
  CHECK(fx.produced("timer-topic").size() == 100);
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"B"});
  // Each batch but the last reports the positions of its cycles only: the
  // message at offset 100 is in the last one.
  CHECK(fx.plog->batches.front()->positions.empty());
  CHECK(fx.plog->batches.back()->positions ==
        std::vector<castor::partition_position>{{0, 101}});
}

TEST_CASE("executor actor: timers catching up over a gap without input stop after "
          "timer_catch_up cycles and fire once at the next input",
          "[actors][executor]") {
  castor::executor_config cfg;
  cfg.timer_catch_up = 5;
  executor_fixture fx{cfg, true};
  fx.release({{0, "a"}}, t0);
  fx.cycle_times->clear();
  // A gap of a day: without a bound, 86,400 timer cycles.
  fx.release({{86400, "b"}}, t0 + 86400s);
  auto fired = fx.produced("timer-topic");
  // Seconds 1-5, then one at the next input.
  REQUIRE(fired.size() == 6);
  CHECK(fired.back() == "timer@" + std::to_string(castor::to_millis(t0 + 86400s)));
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", "B"});
}

TEST_CASE("executor actor: a record too large for the producer stops it naming the sink "
          "and its sizes",
          "[actors][executor]") {
  castor::executor_config cfg;
  cfg.max_message_bytes = 100;
  executor_fixture fx{cfg};
  fx.release({{1, std::string(200, 'x')}}, t0 + 1s);
  REQUIRE(fx.flog->errors.size() == 1);
  CHECK(castor::code_of(fx.flog->errors[0]) == castor::ec::serialize_failed);
  CHECK_THAT(castor::render(fx.flog->errors[0]),
             Catch::Contains("sink 'out' made a record of 236 bytes for topic "
                             "'out-topic'") &&
                 Catch::Contains("message.max.bytes is 100"));
}

TEST_CASE("executor actor: with dead_letter, a record too large is dead-lettered cut to "
          "fit, and so is a dead letter too large",
          "[actors][executor]") {
  castor::executor_config cfg;
  cfg.max_message_bytes = 600;
  cfg.dead_letter_topic = "dlq";
  cfg.on_node_error = castor::error_policy::dead_letter;
  cfg.on_deserialize_error = castor::error_policy::dead_letter;
  executor_fixture fx{cfg};
  fx.release({{1, std::string(1000, 'x')}, {2, "fine"}}, t0 + 2s);
  CHECK(fx.flog->errors.empty());
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"FINE"});
  auto dead = fx.records("dlq");
  REQUIRE(dead.size() == 1);
  CHECK(castor::kafka::record_wire_size(dead[0]) <= 600);
  CHECK(header_value(dead[0], "castor.dlq.stage") == "produce:out");
  CHECK(header_value(dead[0], "castor.dlq.topic") == "out-topic");
  CHECK(header_value(dead[0], "castor.dlq.truncated").has_value());
  CHECK_THAT(*header_value(dead[0], "castor.dlq.error"),
             Catch::Contains("record of 1036 bytes"));
  CHECK(dead[0].value->find_first_not_of('X') == std::string::npos);
  CHECK(dead[0].value->size() < 600);
}

TEST_CASE("executor actor: runs a cycle at the watermark and produces the updated sinks",
          "[actors][executor]") {
  executor_fixture fx;
  fx.release({{1, "hello"}, {2, "world"}}, t0 + 2s);
  CHECK(fx.flog->acks == 1);
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"HELLO", "WORLD"});
  CHECK(fx.cycle_times->back() == t0 + 2s);
}

TEST_CASE("executor actor: answers a release only once the producer took its records",
          "[actors][executor]") {
  executor_fixture fx;
  fx.plog->hold = true;
  fx.release({{1, "a"}}, t0 + 1s);
  CHECK(fx.flog->acks == 0);
  caf::anon_send(fx.prod, castor::retry_atom::value);
  fx.run();
  CHECK(fx.flog->acks == 1);
}

TEST_CASE(
    "executor actor: in replay, a timer fires in a cycle of its own at its time, with "
    "the messages up to it",
    "[actors][executor]") {
  executor_fixture fx;
  fx.release({{1, "a"}}, t0 + 1s); // sets the timer for t0 + 10 s
  fx.cycle_times->clear();
  fx.release({{5, "b"}, {15, "c"}}, t0 + 20s);
  CHECK(*fx.cycle_times == std::vector<timestamp>{t0 + 10s, t0 + 20s});
  CHECK(fx.produced("timer-topic") ==
        std::vector<std::string>{"timer@" + std::to_string(castor::to_millis(t0 + 10s))});
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", "B", "C"});
}

TEST_CASE("executor actor: an empty release moves replay time and fires due timers",
          "[actors][executor]") {
  executor_fixture fx;
  fx.release({{1, "a"}}, t0 + 1s);
  fx.release({}, t0 + 30s);
  CHECK(fx.produced("timer-topic").size() == 1);
  CHECK(fx.flog->acks == 2);
}

TEST_CASE("executor actor: live cycles run at the wall clock", "[actors][executor]") {
  executor_fixture fx;
  fx.release({{1, "a"}}, t0 + 1s);   // sets the DAG's timer for t0 + 10 s
  fx.release({{20, "b"}}, t0 + 20s); // fires it
  auto before = castor::wall_clock_now();
  fx.release({{21, "c"}}, t0 + 21s, true);
  REQUIRE_FALSE(fx.cycle_times->empty());
  CHECK(fx.cycle_times->back() >= before);
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", "B", "C"});
}

TEST_CASE("executor actor: a rejected message stops it with an error naming topic, "
          "partition and offset",
          "[actors][executor]") {
  executor_fixture fx;
  auto batch = std::make_shared<castor::release_batch>();
  batch->messages.push_back(consumed_message::make(0, 7, t0, std::nullopt, std::nullopt));
  batch->watermark = t0;
  caf::anon_send(fx.feed, batch);
  fx.run();
  REQUIRE(fx.flog->errors.size() == 1);
  CHECK(castor::code_of(fx.flog->errors[0]) == castor::ec::deserialize_failed);
  CHECK_THAT(castor::render(fx.flog->errors[0]), Catch::Contains("in[0] offset 7"));
}

TEST_CASE("executor actor: a node that throws stops it with an error naming the node",
          "[actors][executor]") {
  executor_fixture fx;
  fx.release({{1, "boom"}}, t0 + 1s);
  REQUIRE(fx.flog->errors.size() == 1);
  CHECK(castor::code_of(fx.flog->errors[0]) == castor::ec::node_failed);
  CHECK_THAT(castor::render(fx.flog->errors[0]), Catch::Contains("node 'upper'"));
  CHECK(fx.produced("out-topic").empty());
}

TEST_CASE("executor actor: every release tells the producer the positions it reached, "
          "even one that made no record",
          "[actors][executor][commits]") {
  executor_fixture fx;
  fx.release({{1, "a"}, {2, "b"}}, t0 + 2s);
  // An empty string makes no record but its offset must still be committed.
  fx.release({{3, ""}}, t0 + 3s);
  REQUIRE(fx.plog->batches.size() == 2);
  using positions = std::vector<castor::partition_position>;
  CHECK(fx.plog->batches[0]->positions == positions{{0, 3}});
  CHECK(fx.plog->batches[1]->positions == positions{{0, 4}});
  CHECK(fx.flog->acks == 2);
}

TEST_CASE("executor actor: with dead_letter, a node that throws dead-letters the "
          "cycle's input and answers the release",
          "[actors][executor]") {
  castor::executor_config cfg;
  cfg.dead_letter_topic = "dlq";
  cfg.on_node_error = castor::error_policy::dead_letter;
  executor_fixture fx{cfg};
  fx.release({{1, "ok"}}, t0 + 1s);
  fx.release({{2, "x"}, {3, "boom"}}, t0 + 3s);
  fx.release({{4, "fine"}}, t0 + 4s);
  CHECK(fx.flog->errors.empty());
  CHECK(fx.flog->acks == 3);
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"OK", "FINE"});
  CHECK(fx.produced("dlq") == std::vector<std::string>{"x", "boom"});
  auto& dead = fx.plog->batches[1]->records.back();
  CHECK(dead.headers.back() == castor::header{"castor.dlq.stage", "node:upper"});
}

TEST_CASE("executor actor: a rejected message without a timestamp is dead-lettered "
          "with a null castor.dlq.timestamp, and the others of its cycle go on",
          "[actors][executor]") {
  castor::executor_config cfg;
  cfg.dead_letter_topic = "dlq";
  cfg.on_deserialize_error = castor::error_policy::dead_letter;
  executor_fixture fx{cfg};
  auto batch = std::make_shared<castor::release_batch>();
  batch->messages.push_back(consumed_message::make(0, 7, t0, std::nullopt, "a"));
  batch->messages.push_back(
      consumed_message::make(0, 8, std::nullopt, "k", std::nullopt)); // a tombstone
  batch->messages.push_back(consumed_message::make(0, 9, t0, std::nullopt, "b"));
  for (auto& m : batch->messages)
    m.order_time = t0;
  batch->watermark = t0;
  caf::anon_send(fx.feed, batch);
  fx.run();
  CHECK(fx.flog->errors.empty());
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", "B"});
  REQUIRE(fx.plog->batches.size() == 1);
  auto& records = fx.plog->batches[0]->records;
  auto dead = std::find_if(records.begin(), records.end(),
                           [](auto& r) { return r.topic == "dlq"; });
  REQUIRE(dead != records.end());
  CHECK(dead->key == "k");
  CHECK_FALSE(dead->value.has_value());
  CHECK_FALSE(dead->time.has_value());
  auto header = [&](const std::string& name) {
    return std::find_if(dead->headers.begin(), dead->headers.end(),
                        [&](auto& h) { return h.name == name; });
  };
  REQUIRE(header("castor.dlq.timestamp") != dead->headers.end());
  CHECK_FALSE(header("castor.dlq.timestamp")->value.has_value());
  CHECK(header("castor.dlq.offset")->value == "8");
  CHECK(header("castor.dlq.stage")->value == "deserialize:in");
  CHECK(fx.plog->batches[0]->positions ==
        std::vector<castor::partition_position>{{0, 10}});
}

// -- consumer and producer, against the mock cluster ---------------------------

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
      [](castor::drain_atom) { return ack_atom::value; },
      [](castor::stats_atom) { return castor::pipeline_stats{}; },
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

struct producer_feeder_log {
  int acks = 0;
  std::optional<uint64_t> undelivered;
  castor::pipeline_stats stats;
};

caf::behavior producer_feeder(caf::event_based_actor* self, castor::producer_actor target,
                              std::shared_ptr<producer_feeder_log> log) {
  return {
      [=](castor::record_batch_ptr batch) {
        self->request(target, caf::infinite, std::move(batch)).then([=](ack_atom) {
          ++log->acks;
        });
      },
      [=](castor::flush_atom, caf::timespan t) {
        self->request(target, caf::infinite, castor::flush_atom::value, t)
            .then([=](uint64_t n) { log->undelivered = n; });
      },
      [=](castor::stats_atom) {
        self->request(target, caf::infinite, castor::stats_atom::value)
            .then([=](castor::pipeline_stats& s) { log->stats = s; });
      },
  };
}

} // namespace

TEST_CASE(
    "producer actor: produces keys, tombstones, headers, partitions and timestamps, "
    "counts deliveries and flushes",
    "[actors][producer][integration]") {
  castor::test::kafka_env env{{{"out", 2}}};
  test_system ts;
  castor::producer_config cfg;
  cfg.properties = env.config().producer;
  cfg.event_driven = false;
  auto prod = ts.spawn(castor::producer, cfg);
  auto log = std::make_shared<producer_feeder_log>();
  auto feed = ts.spawn(producer_feeder, prod, log);
  auto batch = std::make_shared<castor::record_batch>();
  castor::producer_record keyed;
  keyed.topic = "out";
  keyed.key = "k";
  keyed.value = "v";
  keyed.partition = 1;
  keyed.time = t0;
  keyed.headers = {{"h", "x"}, {"empty", std::nullopt}};
  castor::producer_record tombstone;
  tombstone.topic = "out";
  tombstone.key = "k";
  tombstone.partition = 1;
  castor::producer_record unkeyed;
  unkeyed.topic = "out";
  unkeyed.value = "";
  unkeyed.partition = 0;
  batch->records = {keyed, tombstone, unkeyed};
  caf::anon_send(feed, batch);
  ts.run();
  CHECK(log->acks == 1);
  caf::anon_send(feed, castor::flush_atom::value, caf::timespan{5s});
  ts.run();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!log->undelivered && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    caf::anon_send(prod, castor::wake_atom::value);
    ts.sched->advance_time(10ms);
    ts.run();
  }
  REQUIRE(log->undelivered);
  CHECK(*log->undelivered == 0);
  caf::anon_send(feed, castor::stats_atom::value);
  ts.run();
  CHECK(log->stats.produced == 3);
  CHECK(log->stats.delivered == 3);
  CHECK(log->stats.delivery_errors == 0);
  auto out = env.read("out", 3);
  REQUIRE(out.size() == 3);
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  CHECK(out[0].partition == 0);
  CHECK_FALSE(out[0].key.has_value());
  CHECK(out[0].value == std::string{});
  CHECK(out[1].key == "k");
  CHECK(out[1].value == "v");
  CHECK(out[1].time_ms == castor::to_millis(t0));
  CHECK(castor::test::header_of(out[1], "h") == "x");
  CHECK_FALSE(castor::test::header_of(out[1], "empty").has_value());
  CHECK(out[2].key == "k");
  CHECK_FALSE(out[2].value.has_value()); // tombstone
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

TEST_CASE(
    "executor actor: when live, a timer due before a message fires first, at its time",
    "[actors][executor]") {
  executor_fixture fx;
  // History released after the switch to live: the first cycle runs at the
  // first message's time and the timer (t0 + 10 s) still fires at t0 + 10 s.
  fx.release({{1, "a"}, {15, "b"}}, t0 + 15s, true);
  REQUIRE(fx.cycle_times->size() >= 3);
  CHECK((*fx.cycle_times)[0] == t0 + 1s);
  CHECK((*fx.cycle_times)[1] == t0 + 10s);
  CHECK(fx.produced("timer-topic") ==
        std::vector<std::string>{"timer@" + std::to_string(castor::to_millis(t0 + 10s))});
  CHECK(fx.cycle_times->back() >= castor::wall_clock_now() - 60s);
}
