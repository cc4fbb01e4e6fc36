// SPDX-License-Identifier: Apache-2.0
#pragma once

// Running whole pipelines in tests: an actor system that kills what a test
// leaves running, counters, waiting for a condition, a clean stop.

#include "castor/pipeline.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace castor::test {

using namespace std::chrono_literals;

/// 2026-01-01T00:00:00Z in ms: the tests' input starts here.
inline constexpr int64_t t0 = 1'767'225'600'000;

// An actor system whose pipelines are killed if a test leaves them running.
struct system_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::vector<castor::pipeline_actor> pipelines;

  system_fixture() {
    castor::add_message_types(cfg);
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  castor::pipeline_actor run(castor::pipeline_definition_ptr def,
                             castor::pipeline_config c) {
    pipelines.push_back(castor::spawn_pipeline(*sys, std::move(def), std::move(c)));
    return pipelines.back();
  }

  ~system_fixture() {
    for (auto& p : pipelines)
      caf::anon_send_exit(p, caf::exit_reason::kill);
  }
};

inline castor::pipeline_stats stats_of(caf::actor_system& sys,
                                       const castor::pipeline_actor& p) {
  caf::scoped_actor self{sys};
  castor::pipeline_stats result;
  self->request(p, 10s, castor::stats_atom::value)
      .receive([&](castor::pipeline_stats& s) { result = s; },
               [&](caf::error& err) { FAIL("stats: " << castor::render(err)); });
  return result;
}

inline void stop_and_wait(caf::actor_system& sys, const castor::pipeline_actor& p) {
  caf::anon_send(p, castor::stop_atom::value);
  auto err = castor::wait_for(sys, p);
  CHECK_FALSE(err);
  if (err)
    WARN(castor::render(err));
}

// Waits until `pred(stats)` holds (or fails after `timeout`).
template <class Pred>
castor::pipeline_stats wait_until(caf::actor_system& sys, const castor::pipeline_actor& p,
                                  Pred pred, std::chrono::seconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto s = stats_of(sys, p);
  while (!pred(s) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    s = stats_of(sys, p);
  }
  REQUIRE(pred(s));
  return s;
}

} // namespace castor::test
