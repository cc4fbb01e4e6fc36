// SPDX-License-Identifier: Apache-2.0
#pragma once

// Shared by the actor tests: an actor system on CAF's deterministic test
// scheduler (virtual time), a log capture, and mocked neighbours behind the
// actors' typed interfaces.

#include "castor/actors.hpp"
#include "castor/logger.hpp"
#include "castor/protocol.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace castor::test {

using namespace std::chrono_literals;
using castor::ack_atom;
using castor::consumed_message;
using castor::timestamp;

inline const timestamp t0 = castor::from_millis(1'767'225'600'000);

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

inline castor::consumer_actor::behavior_type
mock_consumer(castor::consumer_actor::pointer, std::shared_ptr<consumer_log> log) {
  return {
      [](castor::wake_atom) {},
      [](castor::wake_atom, uint64_t) {},
      [log](castor::pause_atom, std::vector<uint32_t> pids) {
        log->pauses.push_back(pids);
      },
      [log](castor::resume_atom, std::vector<uint32_t> pids) {
        log->resumes.push_back(pids);
      },
      [](castor::commit_atom) {},
      [](castor::commit_atom, caf::timespan) { return ack_atom::value; },
      [](castor::drain_atom) { return ack_atom::value; },
      [](castor::tick_atom) {},
      [](castor::revoke_atom, uint64_t) {},
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

inline castor::executor_actor::behavior_type
mock_executor(castor::executor_actor::pointer self, std::shared_ptr<executor_log> log) {
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
      [](castor::revoke_atom, std::vector<uint32_t>) { return castor::revocation{}; },
      [](castor::stats_atom) { return castor::pipeline_stats{}; },
  };
}

// Sends consumed batches to an orchestrator and keeps the credits.
struct feeder_log {
  std::vector<uint32_t> credits;
};

inline caf::behavior feeder(caf::event_based_actor* self,
                            castor::orchestrator_actor target,
                            std::shared_ptr<feeder_log> log) {
  return {
      [=](castor::consumed_batch_ptr batch) {
        self->request(target, caf::infinite, std::move(batch)).then([=](uint32_t credit) {
          log->credits.push_back(credit);
        });
      },
  };
}

// Asks an orchestrator or an executor to revoke partitions and keeps the
// answers.
struct revocation_log {
  std::vector<castor::revocation> answers;
};

template <class Target>
caf::behavior revoker(caf::event_based_actor* self, Target target,
                      std::shared_ptr<revocation_log> log) {
  return {
      [=](castor::revoke_atom, std::vector<uint32_t> pids) {
        self->request(target, caf::infinite, castor::revoke_atom::value, std::move(pids))
            .then([=](castor::revocation& r) { log->answers.push_back(std::move(r)); });
      },
  };
}

inline castor::partition_table_ptr
table_of(std::vector<std::pair<std::string, int64_t>> parts) {
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

inline castor::consumed_batch_ptr
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

inline std::vector<std::string> values_of(const castor::release_batch& batch) {
  std::vector<std::string> result;
  for (auto& m : batch.messages)
    result.emplace_back(*m.value());
  return result;
}

struct producer_log {
  std::vector<castor::record_batch_ptr> batches;
  std::vector<caf::typed_response_promise<ack_atom>> held;
  bool hold = false;
};

inline castor::producer_actor::behavior_type
mock_producer(castor::producer_actor::pointer self, std::shared_ptr<producer_log> log) {
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
      [](castor::commit_atom, std::vector<castor::partition_position>) {
        return std::vector<int64_t>{};
      },
      [](castor::stats_atom) { return castor::pipeline_stats{}; },
  };
}

} // namespace castor::test
