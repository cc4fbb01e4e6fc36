// SPDX-License-Identifier: Apache-2.0
// How many scheduler threads castor starts: no more than the cores this
// process may use, at most four, and the count set is the count CAF starts.

#include "castor/scheduler.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include <catch2/catch.hpp>

#include <sched.h>

#include <algorithm>
#include <thread>

namespace {

// Pins the calling thread to one CPU of its mask while in scope.
struct pinned_to_one_cpu {
  cpu_set_t saved;
  bool ok = false;

  pinned_to_one_cpu() {
    CPU_ZERO(&saved);
    if (sched_getaffinity(0, sizeof(saved), &saved) != 0)
      return;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &saved))
        continue;
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      ok = sched_setaffinity(0, sizeof(one), &one) == 0;
      return;
    }
  }
  ~pinned_to_one_cpu() {
    if (ok)
      sched_setaffinity(0, sizeof(saved), &saved);
  }
};

} // namespace

TEST_CASE("scheduler: the usable cores follow the CPU affinity", "[scheduler]") {
  auto all = castor::usable_cores();
  CHECK(all >= 1);
  CHECK(all <= std::max<size_t>(std::thread::hardware_concurrency(), 1));
  CHECK(castor::auto_scheduler_threads() == std::min<size_t>(all, 4));
  {
    pinned_to_one_cpu pin;
    REQUIRE(pin.ok);
    CHECK(castor::usable_cores() == 1);
    CHECK(castor::auto_scheduler_threads() == 1);
  }
  CHECK(castor::usable_cores() == all);
}

TEST_CASE("scheduler: the count set is the count of workers CAF starts",
          "[scheduler]") {
  for (size_t threads : {size_t{1}, size_t{3}, size_t{0}}) {
    caf::actor_system_config cfg;
    auto set = castor::set_scheduler_threads(cfg, threads);
    CHECK(set == (threads == 0 ? castor::auto_scheduler_threads() : threads));
    caf::actor_system sys{cfg};
    CHECK(sys.scheduler().num_workers() == set);
  }
}
