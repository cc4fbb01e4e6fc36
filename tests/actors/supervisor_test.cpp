// SPDX-License-Identifier: Apache-2.0
// The supervisor on the deterministic scheduler with its four components
// mocked: the order of an ordered stop, its bound when a component does not
// answer, a component's failure as the pipeline's exit reason, merged
// figures.

#include "castor/error.hpp"
#include "castor/supervisor.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/system_messages.hpp>

#include "fixtures.hpp"

using namespace castor::test;

namespace {

// What the mocked components saw, in order, and what they hold back.
struct component_log {
  std::vector<std::string> calls;
  /// Requests that get no answer (by call name).
  std::set<std::string> silent;
  /// The final commit answers with this error (none: ack).
  caf::error commit_error;
  uint64_t undelivered = 0;
  /// Promises never delivered (kept so that no answer goes out).
  std::vector<caf::typed_response_promise<ack_atom>> held;
  std::vector<caf::typed_response_promise<uint64_t>> held_flush;
};

template <class Self>
caf::result<ack_atom> answer(Self* self, component_log& log, const std::string& call) {
  log.calls.push_back(call);
  if (!log.silent.contains(call))
    return ack_atom::value;
  auto promise = self->template make_response_promise<ack_atom>();
  log.held.push_back(promise);
  return promise;
}

castor::pipeline_stats figures(uint64_t consumed, uint64_t produced) {
  castor::pipeline_stats s;
  s.consumed = consumed;
  s.produced = produced;
  return s;
}

castor::consumer_actor::behavior_type consumer_mock(castor::consumer_actor::pointer self,
                                                    std::shared_ptr<component_log> log) {
  return {
      [](castor::wake_atom) {},
      [](castor::wake_atom, uint64_t) {},
      [](castor::pause_atom, const std::vector<uint32_t>&) {},
      [](castor::resume_atom, const std::vector<uint32_t>&) {},
      [](castor::commit_atom) {},
      [self, log](castor::commit_atom, caf::timespan) -> caf::result<ack_atom> {
        if (log->commit_error) {
          log->calls.push_back("consumer: commit");
          return log->commit_error;
        }
        return answer(self, *log, "consumer: commit");
      },
      [self, log](castor::drain_atom) { return answer(self, *log, "consumer: drain"); },
      [](castor::tick_atom) {},
      [](castor::revoke_atom, uint64_t) {},
      [](castor::stats_atom) { return figures(10, 0); },
  };
}

castor::orchestrator_actor::behavior_type
orchestrator_mock(castor::orchestrator_actor::pointer self,
                  std::shared_ptr<component_log> log) {
  return {
      [](castor::start_atom, castor::partition_table_ptr, castor::consumer_actor) {},
      [](castor::consumed_batch_ptr) { return uint32_t{1}; },
      [](castor::tick_atom) {},
      [](castor::assign_atom, std::vector<castor::partition_assignment>) {},
      [](castor::revoke_atom, std::vector<uint32_t>) { return castor::revocation{}; },
      [self, log](castor::drain_atom) {
        return answer(self, *log, "orchestrator: drain");
      },
      [](castor::stats_atom) { return castor::pipeline_stats{}; },
      [](castor::finish_atom) { return ack_atom::value; },
      [](castor::wake_atom) {},
  };
}

castor::executor_actor::behavior_type executor_mock(castor::executor_actor::pointer self,
                                                    std::shared_ptr<component_log> log) {
  return {
      [](castor::start_atom, castor::partition_table_ptr) {},
      [](castor::release_batch_ptr) { return ack_atom::value; },
      // (The test's way to make the executor fail.)
      [self](castor::timer_atom) {
        self->quit(castor::make_error(castor::ec::node_failed, "node 'x' threw"));
      },
      [](castor::run_atom) {},
      [self, log](castor::drain_atom) { return answer(self, *log, "executor: drain"); },
      [](castor::revoke_atom, std::vector<uint32_t>) { return castor::revocation{}; },
      [](castor::stats_atom) { return castor::pipeline_stats{}; },
  };
}

castor::producer_actor::behavior_type producer_mock(castor::producer_actor::pointer self,
                                                    std::shared_ptr<component_log> log) {
  return {
      [](castor::record_batch_ptr) { return ack_atom::value; },
      [](castor::wake_atom) {},
      [](castor::retry_atom) {},
      [self, log](castor::flush_atom, caf::timespan) -> caf::result<uint64_t> {
        log->calls.push_back("producer: flush");
        if (!log->silent.contains("producer: flush"))
          return log->undelivered;
        auto promise = self->make_response_promise<uint64_t>();
        log->held_flush.push_back(promise);
        return promise;
      },
      [](castor::commit_atom) { return std::vector<int64_t>{}; },
      [](castor::commit_atom, std::vector<castor::partition_position>) {
        return std::vector<int64_t>{};
      },
      [](castor::stats_atom) { return figures(0, 7); },
  };
}

// Watches the pipeline and keeps its exit reason.
struct exit_log {
  bool down = false;
  caf::error reason;
};

caf::behavior watcher(caf::event_based_actor* self, castor::pipeline_actor pipeline,
                      std::shared_ptr<exit_log> log) {
  self->monitor(pipeline);
  self->set_down_handler([log](caf::down_msg& dm) {
    log->down = true;
    log->reason = dm.reason;
  });
  return {[](int) {}};
}

// Asks the pipeline for its figures and keeps them.
caf::behavior asker(caf::event_based_actor* self, castor::pipeline_actor pipeline,
                    std::shared_ptr<castor::pipeline_stats> out) {
  return {
      [=](castor::stats_atom) {
        self->request(pipeline, caf::infinite, castor::stats_atom::value)
            .then([out](castor::pipeline_stats& s) { *out = s; });
      },
  };
}

struct supervisor_fixture : test_system {
  std::shared_ptr<component_log> log = std::make_shared<component_log>();
  std::shared_ptr<exit_log> exits = std::make_shared<exit_log>();
  castor::pipeline_components components;
  castor::pipeline_actor pipeline;

  supervisor_fixture() {
    components.consumer = spawn(consumer_mock, log);
    components.orchestrator = spawn(orchestrator_mock, log);
    components.executor = spawn(executor_mock, log);
    components.producer = spawn(producer_mock, log);
    castor::supervisor_config cfg;
    cfg.flush_timeout = 2s;
    cfg.stop_grace = 3s;
    pipeline = spawn(castor::supervisor, components, cfg);
    spawn(watcher, pipeline, exits);
    run();
  }
};

} // namespace

TEST_CASE("supervisor: an ordered stop drains the consumer, orchestrator and executor, "
          "flushes, commits, then exits cleanly",
          "[actors][supervisor]") {
  supervisor_fixture fx;
  caf::anon_send(fx.pipeline, castor::stop_atom::value);
  fx.run();
  CHECK(fx.log->calls == std::vector<std::string>{
                             "consumer: drain", "orchestrator: drain", "executor: drain",
                             "producer: flush", "consumer: commit"});
  REQUIRE(fx.exits->down);
  CHECK_FALSE(fx.exits->reason);
}

TEST_CASE("supervisor: a component that does not answer its step does not hang the "
          "stop: after flush_timeout plus the grace it goes on",
          "[actors][supervisor]") {
  supervisor_fixture fx;
  fx.log->silent.insert("executor: drain");
  caf::anon_send(fx.pipeline, castor::stop_atom::value);
  fx.run();
  CHECK(fx.log->calls == std::vector<std::string>{"consumer: drain",
                                                  "orchestrator: drain",
                                                  "executor: drain"});
  CHECK_FALSE(fx.exits->down);
  fx.sched->advance_time(4s);
  fx.run();
  CHECK_FALSE(fx.exits->down); // 5 s (2 s flush + 3 s grace) not over yet
  fx.sched->advance_time(2s);
  fx.run();
  CHECK(fx.log->calls.size() == 5);
  CHECK(fx.log->calls.back() == "consumer: commit");
  REQUIRE(fx.exits->down);
}

TEST_CASE("supervisor: a flush without an answer ends the stop with produce_failed",
          "[actors][supervisor]") {
  supervisor_fixture fx;
  fx.log->silent.insert("producer: flush");
  caf::anon_send(fx.pipeline, castor::stop_atom::value);
  fx.run();
  fx.sched->advance_time(6s);
  fx.run();
  REQUIRE(fx.exits->down);
  CHECK(castor::code_of(fx.exits->reason) == castor::ec::produce_failed);
  CHECK_THAT(castor::render(fx.exits->reason),
             Catch::Contains("did not answer the flush"));
}

TEST_CASE("supervisor: records not delivered and a failed final commit decide the exit "
          "reason",
          "[actors][supervisor]") {
  SECTION("undelivered") {
    supervisor_fixture fx;
    fx.log->undelivered = 3;
    caf::anon_send(fx.pipeline, castor::stop_atom::value);
    fx.run();
    REQUIRE(fx.exits->down);
    CHECK(castor::code_of(fx.exits->reason) == castor::ec::produce_failed);
    CHECK_THAT(castor::render(fx.exits->reason), Catch::Contains("3 record(s)"));
  }
  SECTION("final commit") {
    supervisor_fixture fx;
    fx.log->commit_error = castor::make_error(castor::ec::kafka_error, "commit refused");
    caf::anon_send(fx.pipeline, castor::stop_atom::value);
    fx.run();
    REQUIRE(fx.exits->down);
    CHECK(castor::code_of(fx.exits->reason) == castor::ec::kafka_error);
  }
}

TEST_CASE("supervisor: a component that fails stops the pipeline with its error",
          "[actors][supervisor]") {
  supervisor_fixture fx;
  caf::anon_send(fx.components.executor, castor::timer_atom::value);
  fx.run();
  REQUIRE(fx.exits->down);
  CHECK(castor::code_of(fx.exits->reason) == castor::ec::node_failed);
  CHECK(fx.log->calls.empty()); // no ordered stop: the others are ended
}

TEST_CASE("supervisor: an exit request from outside (anon_send_exit) is an ordered stop",
          "[actors][supervisor]") {
  supervisor_fixture fx;
  caf::anon_send_exit(fx.pipeline, caf::exit_reason::user_shutdown);
  fx.run();
  CHECK(fx.log->calls.size() == 5);
  REQUIRE(fx.exits->down);
  CHECK_FALSE(fx.exits->reason);
}

TEST_CASE("supervisor: stats merge every component's figures", "[actors][supervisor]") {
  supervisor_fixture fx;
  auto out = std::make_shared<castor::pipeline_stats>();
  auto a = fx.spawn(asker, fx.pipeline, out);
  caf::anon_send(a, castor::stats_atom::value);
  fx.run();
  CHECK(out->consumed == 10);
  CHECK(out->produced == 7);
}

TEST_CASE("pipeline_stats: every figure survives CAF's serialization (inspect lists it)",
          "[actors][protocol]") {
  castor::pipeline_stats s;
  s.consumed = 1;
  s.late = 2;
  s.idled = 3;
  s.bad_timestamps = 4;
  s.offset_resets = 5;
  s.skipped_offsets = 6;
  s.timer_skips = 7;
  s.oversized = 8;
  s.lag_seconds = 9.5;
  s.commits = 10;
  s.partitions.push_back({});
  s.partitions.back().skipped = 11;
  caf::actor_system_config cfg;
  castor::add_message_types(cfg);
  caf::actor_system sys{cfg};
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE_FALSE(sink(s));
  castor::pipeline_stats back;
  caf::binary_deserializer source{sys, buf};
  REQUIRE_FALSE(source(back));
  CHECK(back.consumed == 1);
  CHECK(back.late == 2);
  CHECK(back.idled == 3);
  CHECK(back.bad_timestamps == 4);
  CHECK(back.offset_resets == 5);
  CHECK(back.skipped_offsets == 6);
  CHECK(back.timer_skips == 7);
  CHECK(back.oversized == 8);
  CHECK(back.lag_seconds == 9.5);
  CHECK(back.commits == 10);
  REQUIRE(back.partitions.size() == 1);
  CHECK(back.partitions[0].skipped == 11);
}
