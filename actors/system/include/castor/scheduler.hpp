// SPDX-License-Identifier: Apache-2.0
#pragma once

// How many CAF scheduler threads run a pipeline.
//
// CAF starts max(cores, 4) workers, and a worker without work polls (a
// hundred spins, then some five hundred sleeps of 50 us) before it waits:
// on a machine with fewer than four cores, idle workers take CPU from the
// busy ones and from librdkafka's threads. A pipeline keeps at most three
// actors busy on the scheduler (the orchestrator, the executor, the
// producer; the consumer has a thread of its own), so more workers than
// cores, or than four, add polling and no work. castor's service sets
// `engine.threads` workers ("auto": auto_scheduler_threads()); a host
// application chooses for itself, and may call set_scheduler_threads.

#include <caf/fwd.hpp>

#include <cstddef>

namespace castor {

/// The cores this process may run on: its CPU affinity mask, bounded by
/// its cgroup's CPU quota (cgroup v2 `cpu.max`, rounded up), at least 1.
size_t usable_cores();

/// engine.threads = "auto": usable_cores(), at most 4.
size_t auto_scheduler_threads();

/// Sets CAF's `scheduler.max-threads` in `cfg` to `threads` (0: auto), before
/// the actor system starts. Returns the count set.
size_t set_scheduler_threads(caf::actor_system_config& cfg, size_t threads = 0);

} // namespace castor
