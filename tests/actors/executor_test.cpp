// SPDX-License-Identifier: Apache-2.0
// The DAG executor on the deterministic scheduler: cycles, timers, dead
// letters, record batches to a mocked producer.

#include "castor/dags/builtin.hpp"
#include "castor/executor.hpp"
#include "castor/kafka/config.hpp"
#include "castor/pipeline.hpp"

#include <thread>

#include "fixtures.hpp"

using namespace castor::test;

namespace {

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
    auto armed = std::make_shared<bool>(false);
    auto ticks = graph
                     ->stream([times, every_second,
                               armed](const castor::timer& t, const timestamp& now,
                                      const std::vector<std::string>& words) {
                       times->push_back(now);
                       if (every_second && !t.next())
                         t.set(now + 1s);
                       else if (!every_second && !*armed) {
                         t.set(t0 + 10s);
                         *armed = true;
                       }
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

  /// Messages at offsets `ms`, each stamped t0 + its offset in seconds, or
  /// all at `at`.
  void release(std::vector<std::pair<int64_t, std::optional<std::string>>> ms,
               timestamp watermark, bool live = false,
               std::optional<timestamp> at = std::nullopt) {
    auto batch = std::make_shared<castor::release_batch>();
    for (auto& [offset, text] : ms) {
      auto ts = at.value_or(t0 + std::chrono::seconds{offset});
      batch->messages.push_back(
          consumed_message::make(0, offset, ts, std::nullopt, text));
      batch->messages.back().order_time = ts;
    }
    batch->watermark = watermark;
    batch->complete_until = live ? timestamp::max() : watermark;
    batch->live = live;
    caf::anon_send(feed, std::move(batch));
    run();
  }

  std::vector<std::string> produced(const std::string& topic) const {
    std::vector<std::string> result;
    for (auto& b : plog->batches)
      for (auto& r : b->records)
        if (r.topic == topic)
          result.push_back(r.value ? r.value->str() : "<null>");
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
  // One timestamp, one cycle: offset 3 is rejected by the deserializer (a
  // null value); then the node fails on offset 5, which dead-letters the
  // rest of the cycle (1, 2, 4, 5).
  fx.release({{1, "a"}, {2, "b"}, {3, std::nullopt}, {4, "c"}, {5, "boom"}}, t0 + 5s,
             false, t0 + 5s);
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
  CHECK(dead[0].value->view().find_first_not_of('X') == std::string::npos);
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

TEST_CASE("executor actor: in replay, a timer fires in a cycle of its own at its time, "
          "between the messages before and after it",
          "[actors][executor]") {
  executor_fixture fx;
  fx.release({{1, "a"}}, t0 + 1s); // sets the timer for t0 + 10 s
  fx.cycle_times->clear();
  fx.release({{5, "b"}, {15, "c"}}, t0 + 20s);
  CHECK(*fx.cycle_times == std::vector<timestamp>{t0 + 5s, t0 + 10s, t0 + 15s});
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

TEST_CASE("executor actor: with batch cycles, live cycles run at the wall clock",
          "[actors][executor]") {
  castor::executor_config cfg;
  cfg.cycles = castor::cycle_policy::by_batch();
  executor_fixture fx{cfg};
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
  batch->complete_until = t0;
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
  fx.release({{2, "x"}, {3, "boom"}}, t0 + 3s, false, t0 + 3s); // one cycle
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
  batch->complete_until = t0;
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

TEST_CASE(
    "executor actor: when live, a timer due before a message fires first, at its time",
    "[actors][executor]") {
  executor_fixture fx;
  // History released after the switch to live: the cycles run at the
  // messages' times (the initialisation's first) and the timer (t0 + 10 s)
  // fires at t0 + 10 s, between them, as in replay.
  fx.release({{1, "a"}, {15, "b"}}, t0 + 15s, true);
  CHECK(*fx.cycle_times == std::vector<timestamp>{t0 + 1s, t0 + 1s, t0 + 10s, t0 + 15s});
  CHECK(fx.produced("timer-topic") ==
        std::vector<std::string>{"timer@" + std::to_string(castor::to_millis(t0 + 10s))});
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", "B"});
}

TEST_CASE("executor actor: live cycles run at their messages' time, one per timestamp",
          "[actors][executor]") {
  executor_fixture fx;
  fx.release({{1, "a"}}, t0 + 1s);
  fx.cycle_times->clear();
  fx.release({{20, "b"}, {21, "c"}, {22, "d"}}, t0 + 22s, true, t0 + 21s);
  fx.release({{23, "e"}}, t0 + 23s, true);
  // The timer (t0 + 10 s) first, then t0 + 21 s with three messages.
  CHECK(*fx.cycle_times == std::vector<timestamp>{t0 + 10s, t0 + 21s, t0 + 23s});
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", "B", "C", "D", "E"});
  auto out = fx.records("out-topic");
  REQUIRE(out.size() == 5);
  // Records without a time of their own carry the cycle's.
  CHECK(out[1].time == t0 + 21s);
  CHECK(out[4].time == t0 + 23s);
}

TEST_CASE("executor actor: a timestamp whose messages may not all be out waits for the "
          "next release, and is not committed meanwhile",
          "[actors][executor]") {
  executor_fixture fx;
  // The input is complete only until t0 + 4 s: t0 + 5 s may have more.
  auto batch = std::make_shared<castor::release_batch>();
  for (int64_t offset : {1, 2, 3}) {
    auto ts = offset == 1 ? t0 + 1s : t0 + 5s;
    batch->messages.push_back(consumed_message::make(0, offset, ts, std::nullopt,
                                                     "m" + std::to_string(offset)));
    batch->messages.back().order_time = ts;
  }
  batch->watermark = t0 + 5s;
  batch->complete_until = t0 + 4s;
  caf::anon_send(fx.feed, batch);
  fx.run();
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"M1"});
  CHECK(fx.flog->acks == 1);
  REQUIRE(fx.plog->batches.size() == 1);
  CHECK(fx.plog->batches[0]->positions ==
        std::vector<castor::partition_position>{{0, 2}});
  // The rest of t0 + 5 s: the group runs as one cycle.
  fx.cycle_times->clear();
  fx.release({{4, "m4"}}, t0 + 6s, false, t0 + 5s);
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"M1", "M2", "M3", "M4"});
  CHECK(*fx.cycle_times == std::vector<timestamp>{t0 + 5s});
  CHECK(fx.plog->batches.back()->positions ==
        std::vector<castor::partition_position>{{0, 5}});
}

TEST_CASE("executor actor: a timestamp with more than batch_size messages runs in cycles "
          "of batch_size, in merge order",
          "[actors][executor]") {
  castor::executor_config cfg;
  cfg.batch_size = 2;
  executor_fixture fx{cfg};
  fx.release({{1, "a"}, {2, "b"}, {3, "c"}, {4, "d"}, {5, "e"}}, t0 + 3s, false, t0 + 3s);
  // The initialisation cycle, then 2 + 2 + 1 at t0 + 3 s.
  CHECK(*fx.cycle_times == std::vector<timestamp>{t0 + 3s, t0 + 3s, t0 + 3s, t0 + 3s});
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", "B", "C", "D", "E"});
}

TEST_CASE("executor actor: with unit_bytes, a timestamp's cycles hold at most batch_size "
          "units of the hold, a larger message alone, in merge order",
          "[actors][executor]") {
  castor::executor_config cfg;
  cfg.batch_size = 4;
  cfg.unit_bytes = 10;
  executor_fixture fx{cfg};
  std::string b(25, 'b'); // 3 units
  std::string d(45, 'd'); // 5 units: more than a cycle
  fx.release({{1, "a"}, {2, b}, {3, "c"}, {4, d}, {5, "e"}, {6, "f"}}, t0 + 3s, false,
             t0 + 3s);
  // The initialisation cycle, then a + b (4 units), c (d does not fit), d
  // alone, e + f.
  CHECK(*fx.cycle_times ==
        std::vector<timestamp>{t0 + 3s, t0 + 3s, t0 + 3s, t0 + 3s, t0 + 3s});
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", std::string(25, 'B'),
                                                             "C", std::string(45, 'D'),
                                                             "E", "F"});
  // The same with t0 + 3 s not complete: the full cycles run, e + f (2
  // units) wait for the rest of their timestamp.
  executor_fixture waits{cfg};
  waits.release({{1, "a"}, {2, b}, {3, "c"}, {4, d}, {5, "e"}, {6, "f"}}, t0 + 2s, false,
                t0 + 3s);
  CHECK(waits.produced("out-topic") ==
        std::vector<std::string>{"A", std::string(25, 'B'), "C", std::string(45, 'D')});
  waits.release({}, t0 + 3s);
  CHECK(waits.produced("out-topic").size() == 6);
  CHECK(*waits.cycle_times == *fx.cycle_times);
  // Carried a + c (2 units), the next release brings b (3): it does not
  // fit, so a + c run as they are, then b.
  executor_fixture carried{cfg};
  carried.release({{1, "a"}, {3, "c"}}, t0 + 2s, false, t0 + 3s);
  CHECK(carried.produced("out-topic").empty());
  carried.release({{4, b}}, t0 + 3s, false, t0 + 3s);
  CHECK(carried.produced("out-topic") ==
        std::vector<std::string>{"A", "C", std::string(25, 'B')});
  CHECK(*carried.cycle_times == std::vector<timestamp>{t0 + 3s, t0 + 3s, t0 + 3s});
}

TEST_CASE("executor actor: bucket cycles run once per bucket of event time, at the "
          "bucket's end",
          "[actors][executor]") {
  castor::executor_config cfg;
  cfg.cycles = castor::cycle_policy::by_bucket(5s);
  executor_fixture fx{cfg};
  fx.release({{1, "a"}, {2, "b"}, {4, "c"}, {5, "d"}, {9, "e"}, {10, "f"}}, t0 + 12s);
  // The initialisation at the first message's time; [t0, t0 + 5 s) at
  // t0 + 5 s; [5, 10) at 10 s, where the timer due at 10 s fires too; the
  // last bucket [10, 15) is not complete at t0 + 12 s: it waits.
  CHECK(*fx.cycle_times == std::vector<timestamp>{t0 + 1s, t0 + 5s, t0 + 10s});
  CHECK(fx.produced("timer-topic").size() == 1);
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", "B", "C", "D", "E"});
  fx.release({}, t0 + 15s);
  CHECK(fx.produced("out-topic") ==
        std::vector<std::string>{"A", "B", "C", "D", "E", "F"});
  CHECK(fx.cycle_times->back() == t0 + 15s);
}

TEST_CASE("executor actor: live, a timer due after the last message fires when the wall "
          "clock reaches it, in a cycle at its own time",
          "[actors][executor]") {
  executor_fixture fx{{}, true};
  // A message stamped 0.9 s ago: its cycle sets the timer for 0.1 s from now.
  auto at = std::chrono::time_point_cast<std::chrono::milliseconds>(
      castor::wall_clock_now() - 900ms);
  fx.release({{1, "a"}}, at, true, at);
  fx.cycle_times->clear();
  std::this_thread::sleep_for(300ms);
  fx.sched->trigger_timeouts();
  fx.run();
  REQUIRE_FALSE(fx.cycle_times->empty());
  CHECK(fx.cycle_times->front() == at + 1s);
  CHECK(fx.produced("timer-topic").front() ==
        "timer@" + std::to_string(castor::to_millis(at + 1s)));
}

// A release helper for the live-switch and idle cases below.
namespace {
castor::release_batch_ptr live_switch_batch(std::vector<int64_t> secs,
                                            castor::timestamp complete, bool live) {
  auto batch = std::make_shared<castor::release_batch>();
  for (auto s : secs) {
    auto ts = t0 + std::chrono::seconds{s};
    batch->messages.push_back(consumed_message::make(0, s, ts, std::nullopt, "m"));
    batch->messages.back().order_time = ts;
  }
  batch->watermark = complete;
  batch->complete_until = complete;
  batch->live = live;
  return batch;
}
} // namespace

TEST_CASE("executor actor: history held at the switch to live comes in two releases; "
          "timers do not run ahead of it to the wall clock",
          "[executor]") {
  executor_fixture fx;
  // First live release: history up to t0+1s, the orchestrator still holds
  // t0+5s (complete_until < max).
  caf::anon_send(fx.feed, live_switch_batch({1}, t0 + 4s, true));
  fx.run();
  caf::anon_send(fx.feed, live_switch_batch({5}, castor::timestamp::max(), true));
  fx.run();
  // A full replay gives: init 1, 1, 5, timer 10
  CHECK(*fx.cycle_times == std::vector<timestamp>{t0 + 1s, t0 + 1s, t0 + 5s, t0 + 10s});
}

TEST_CASE("executor actor: a replay release that says the input is complete to the end "
          "of time does not run timers there",
          "[executor]") {
  executor_fixture fx{{}, true};
  auto batch = live_switch_batch({1}, castor::timestamp::max(), false);
  batch->watermark = t0 + 1s;
  caf::anon_send(fx.feed, batch);
  fx.run();
  INFO("cycles: " << fx.cycle_times->size());
  CHECK(fx.cycle_times->size() < 100);
  CHECK(fx.cycle_times->back() < t0 + 100s);
}

TEST_CASE(
    "executor actor: live with a stop time ahead, a timer fires when the wall clock "
    "reaches it; none at or after the stop",
    "[actors][executor]") {
  castor::executor_config cfg;
  auto at = std::chrono::time_point_cast<std::chrono::milliseconds>(
      castor::wall_clock_now() - 900ms);
  cfg.stop = at + 1500ms; // the timer at +1 s fires, the one at +2 s does not
  executor_fixture fx{cfg, true};
  // Live releases of a bounded replay say the input is complete up to just
  // before the stop.
  auto batch = std::make_shared<castor::release_batch>();
  batch->messages.push_back(consumed_message::make(0, 1, at, std::nullopt, "a"));
  batch->messages.back().order_time = at;
  batch->watermark = at;
  batch->complete_until = *cfg.stop - castor::duration{1};
  batch->live = true;
  caf::anon_send(fx.feed, batch);
  fx.run();
  fx.cycle_times->clear();
  std::this_thread::sleep_for(300ms);
  fx.sched->trigger_timeouts();
  fx.run();
  REQUIRE(fx.cycle_times->size() == 1);
  CHECK(fx.cycle_times->front() == at + 1s);
  std::this_thread::sleep_for(1200ms);
  fx.sched->trigger_timeouts();
  fx.run();
  CHECK(fx.cycle_times->size() == 1); // the next, at +2 s, is past the stop
}

TEST_CASE(
    "executor actor: a bucket that spans many releases runs once, with every message "
    "in order, when it is complete",
    "[actors][executor]") {
  castor::executor_config cfg;
  cfg.cycles = castor::cycle_policy::by_bucket(std::chrono::minutes{10});
  executor_fixture fx{cfg};
  // 299 releases of two messages, one second apart, all in [t0, t0 + 10 min).
  std::vector<std::string> expected;
  for (int64_t k = 0; k < 299; ++k) {
    auto a = "a" + std::to_string(k);
    auto b = "b" + std::to_string(k);
    fx.release({{2 * k + 1, a}, {2 * k + 2, b}}, t0 + std::chrono::seconds{2 * k + 2});
    for (auto& w : {a, b}) {
      std::string upper = w;
      for (auto& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      expected.push_back(upper);
    }
  }
  CHECK(fx.produced("out-topic").empty()); // the bucket is not complete yet
  fx.release({}, t0 + std::chrono::minutes{10});
  CHECK(fx.produced("out-topic") == expected);
  CHECK(fx.cycle_times->back() == t0 + std::chrono::minutes{10});
}

TEST_CASE("executor actor: a revocation drops the revoked partitions' messages waiting "
          "for their cycle and answers with the positions sent to the producer",
          "[actors][executor][group]") {
  executor_fixture fx;
  caf::anon_send(fx.exec, castor::start_atom::value,
                 table_of({{"in", 100}, {"in", 100}}));
  fx.run();
  auto rlog = std::make_shared<revocation_log>();
  auto rev = fx.spawn(revoker<castor::executor_actor>, fx.exec, rlog);
  auto release =
      [&](std::vector<std::tuple<uint32_t, int64_t, timestamp, std::string>> ms,
          timestamp complete) {
        auto batch = std::make_shared<castor::release_batch>();
        for (auto& [pid, offset, ts, text] : ms) {
          batch->messages.push_back(
              consumed_message::make(pid, offset, ts, std::nullopt, text));
          batch->messages.back().order_time = ts;
        }
        batch->watermark = complete;
        batch->complete_until = complete;
        caf::anon_send(fx.feed, std::move(batch));
        fx.run();
      };
  // "c" (partition 1) at 3 s is not complete at 2 s: it waits in the carry.
  release({{0, 0, t0 + 1s, "a"}, {1, 0, t0 + 2s, "b"}, {1, 1, t0 + 3s, "c"}}, t0 + 2s);
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", "B"});
  caf::anon_send(rev, castor::revoke_atom::value, std::vector<uint32_t>{1});
  fx.run();
  REQUIRE(rlog->answers.size() == 1);
  CHECK(rlog->answers[0].dropped == 1);
  // Partition 1's position sent to the producer: after "b" (offset 0).
  CHECK(rlog->answers[0].positions == std::vector<std::pair<uint32_t, int64_t>>{{1, 1}});
  // The next release completes 3 s: "c" is gone (its next owner reads it).
  release({{0, 1, t0 + 4s, "d"}}, t0 + 4s);
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", "B", "D"});
  // Assigned again later, its messages come in later releases and run.
  release({{1, 1, t0 + 5s, "c"}}, t0 + 5s);
  CHECK(fx.produced("out-topic") == std::vector<std::string>{"A", "B", "D", "C"});
}

TEST_CASE("executor actor: a revocation waits for the releases before it to run and "
          "reach the producer",
          "[actors][executor][group]") {
  executor_fixture fx;
  auto rlog = std::make_shared<revocation_log>();
  auto rev = fx.spawn(revoker<castor::executor_actor>, fx.exec, rlog);
  fx.plog->hold = true;
  fx.release({{1, "a"}}, t0 + 1s);
  caf::anon_send(rev, castor::revoke_atom::value, std::vector<uint32_t>{0});
  fx.run();
  // The release's records are not with the producer yet.
  CHECK(rlog->answers.empty());
  caf::anon_send(fx.prod, castor::retry_atom::value);
  fx.run();
  REQUIRE(rlog->answers.size() == 1);
  CHECK(rlog->answers[0].positions == std::vector<std::pair<uint32_t, int64_t>>{{0, 2}});
}

TEST_CASE("executor actor: copy's records borrow their messages' bytes, and the batch "
          "that holds them keeps their release until the producer is done",
          "[actors][executor]") {
  test_system sys;
  auto plog = std::make_shared<producer_log>();
  auto flog = std::make_shared<release_feeder_log>();
  auto def = castor::dags::copy({{"in", "in", castor::start_policy::earliest()}},
                                {{"out", "out-topic"}});
  REQUIRE(def);
  auto prod = sys.spawn(mock_producer, plog);
  auto exec = sys.spawn(castor::executor, *def, prod, castor::executor_config{});
  auto feed = sys.spawn(release_feeder, exec, flog);
  caf::anon_send(exec, castor::start_atom::value, table_of({{"in", 100}}));
  sys.run();
  auto release = std::make_shared<castor::release_batch>();
  for (int64_t i = 0; i < 3; ++i) {
    auto ts = t0 + std::chrono::seconds{i};
    release->messages.push_back(consumed_message::make(
        0, i, ts, "a key longer than a short string " + std::to_string(i),
        "a value longer than a short string " + std::to_string(i)));
    release->messages.back().order_time = ts;
  }
  release->watermark = t0 + 2s;
  release->complete_until = t0 + 2s;
  std::weak_ptr<castor::release_batch> watch = release;
  auto* first = &release->messages.front();
  caf::anon_send(feed, std::move(release));
  sys.run();
  REQUIRE(flog->acks == 1);
  std::vector<const castor::producer_record*> records;
  for (auto& b : plog->batches)
    for (auto& r : b->records)
      records.push_back(&r);
  REQUIRE(records.size() == 3);
  // The executor answered the release: only the producer's batches hold it.
  REQUIRE_FALSE(watch.expired());
  for (auto& b : plog->batches)
    CHECK(b->input == watch.lock());
  for (size_t i = 0; i < records.size(); ++i) {
    auto& r = *records[i];
    auto& m = first[i];
    REQUIRE(r.key);
    REQUIRE(r.value);
    CHECK(r.key->borrowed());
    CHECK(r.value->borrowed());
    CHECK(r.key->data() == m.key()->data());
    CHECK(r.value->data() == m.value()->data());
    CHECK(*r.value == "a value longer than a short string " + std::to_string(i));
  }
  plog->batches.clear();
  CHECK(watch.expired());
}

namespace {

// The borrowed bytes `x` of a record of `b` lie in a key or value of one of
// the messages of the batch's release.
bool inside_input(const castor::record_batch& b, const castor::bytes& x) {
  if (!x.borrowed())
    return true;
  if (!b.input)
    return false;
  for (auto& m : b.input->messages)
    for (auto f : {m.key(), m.value()})
      if (f && x.data() >= f->data() && x.data() + x.size() <= f->data() + f->size())
        return true;
  return false;
}

} // namespace

TEST_CASE("executor actor: merge's borrowed bytes always point into their batch's "
          "release, with groups carried across releases, several batches per "
          "release and late answers",
          "[actors][executor]") {
  for (int policy = 0; policy < 3; ++policy)
    for (size_t per_batch : {size_t{1}, size_t{2}, size_t{1000}}) {
      CAPTURE(policy, per_batch);
      test_system sys;
      auto plog = std::make_shared<producer_log>();
      plog->hold = true;
      auto flog = std::make_shared<release_feeder_log>();
      auto def = castor::dags::merge({{"a", "a", castor::start_policy::earliest()},
                                      {"b", "b", castor::start_policy::earliest()}},
                                     {{"out", "out-topic"}});
      REQUIRE(def);
      castor::executor_config cfg;
      cfg.records_per_batch = per_batch;
      cfg.batches_in_flight = 2;
      cfg.cycles_per_turn = 1;
      cfg.cycles = policy == 0   ? castor::cycle_policy::by_bucket(5s)
                   : policy == 1 ? castor::cycle_policy::by_timestamp()
                                 : castor::cycle_policy::by_batch();
      auto prod = sys.spawn(mock_producer, plog);
      auto exec = sys.spawn(castor::executor, *def, prod, cfg);
      auto feed = sys.spawn(release_feeder, exec, flog);
      auto table = std::make_shared<castor::partition_table>();
      table->partitions.push_back({"a", 0, 0, 0, 100, "test"});
      table->partitions.push_back({"b", 0, 1, 0, 100, "test"});
      caf::anon_send(exec, castor::start_atom::value,
                     castor::partition_table_ptr{std::move(table)});
      sys.run();
      int64_t offset = 0;
      for (int rel = 0; rel < 6; ++rel) {
        auto release = std::make_shared<castor::release_batch>();
        for (int k = 0; k < 4; ++k) {
          auto ts = t0 + std::chrono::seconds{rel * 4 + k};
          auto o = offset++;
          release->messages.push_back(consumed_message::make(
              static_cast<uint32_t>(k % 2), o, ts,
              "a key longer than a short string " + std::to_string(o),
              "a value longer than a short string " + std::to_string(o)));
          release->messages.back().order_time = ts;
        }
        // Complete only part way: buckets and timestamps beyond wait for
        // the next release (carried).
        release->watermark = t0 + std::chrono::seconds{rel * 4 + 2};
        release->complete_until = release->watermark;
        release->final = rel == 5;
        caf::anon_send(feed, std::move(release));
        sys.run();
        caf::anon_send(prod, castor::retry_atom::value); // answers late
        sys.run();
      }
      for (int i = 0; i < 50 && flog->acks < 6; ++i) {
        caf::anon_send(prod, castor::retry_atom::value);
        sys.run();
      }
      CHECK(flog->acks == 6);
      size_t records = 0;
      bool carried = false;
      for (auto& b : plog->batches) {
        REQUIRE(b->input);
        carried = carried || b->input->messages.size() != 4;
        for (auto& r : b->records) {
          ++records;
          REQUIRE(r.key);
          REQUIRE(r.value);
          CHECK(r.value->borrowed());
          CHECK(inside_input(*b, *r.key));
          CHECK(inside_input(*b, *r.value));
          CHECK(r.value->view().starts_with("a value longer than a short string"));
        }
      }
      CHECK(records == 24);
      if (policy == 0)
        CHECK(carried); // buckets of 5 s span releases of 4 s
    }
}
