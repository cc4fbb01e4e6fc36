// SPDX-License-Identifier: Apache-2.0
#pragma once

// How many CAF scheduler threads run a pipeline.
//
// CAF starts max(cores, 4) workers. A worker without work polls (a hundred
// spins, then some five hundred sleeps of 50 us), and then waits on a
// condition variable 10 ms at a time, trying to steal work after each wait:
// on a machine with fewer than four cores, idle workers take CPU from the
// busy ones and from librdkafka's threads. A pipeline keeps at most three
// actors busy on the scheduler (the orchestrator, the executor, the
// producer; the consumer has a thread of its own), so more workers than
// cores, or than three, add polling and no work. castor's service starts
// `engine.threads` workers ("auto": auto_scheduler_threads()); a host
// application chooses for itself, and may call set_scheduler_threads.

#include <caf/fwd.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace castor {

/// The cores the calling thread may run on: its CPU affinity mask, bounded
/// by its cgroup's CPU quota (cgroup v2 `cpu.max`, or v1
/// `cpu.cfs_quota_us` / `cpu.cfs_period_us`, on this group and the groups
/// above it; rounded up), at least 1. Called from the main thread before
/// other threads start, it is the process's.
size_t usable_cores();

/// engine.threads = "auto": `cores` (by default usable_cores()), at most 3
/// (the actors a pipeline keeps busy on the scheduler).
size_t auto_scheduler_threads(size_t cores = usable_cores());

/// Sets CAF's `scheduler.max-threads` in `cfg` to `threads` (0: auto, for
/// `cores` usable cores), before the actor system starts. Returns the count
/// set.
size_t set_scheduler_threads(caf::actor_system_config& cfg, size_t threads = 0,
                             size_t cores = 0);

namespace detail {

/// Reads a file whole (none: unreadable).
using file_reader = std::function<std::optional<std::string>(const std::string& path)>;

/// The tightest CPU quota, in cores, that the cgroups of a process impose:
/// `mountinfo` is /proc/self/mountinfo (where cgroup v2 and v1's cpu
/// controller are mounted), `cgroups` /proc/self/cgroup (the process's
/// groups), `read` reads the controller files. 0 when there is none.
double cgroup_cpu_quota(std::string_view mountinfo, std::string_view cgroups,
                        const file_reader& read);

} // namespace detail

} // namespace castor
