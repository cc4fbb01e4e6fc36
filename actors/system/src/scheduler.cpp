// SPDX-License-Identifier: Apache-2.0
#include "castor/scheduler.hpp"

#include <caf/actor_system_config.hpp>

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>

namespace castor {

namespace {

// The cgroup v2 CPU quota of this process in cores ("200000 100000": 2), or
// 0 when there is none (no cgroup v2, "max", unreadable).
double cgroup_quota() {
  std::ifstream self{"/proc/self/cgroup"};
  std::string line;
  std::string path;
  while (std::getline(self, line))
    if (line.starts_with("0::")) // the unified hierarchy
      path = line.substr(3);
  if (path.empty())
    return 0;
  // The limit may be set on the process's group or on any group above it:
  // the tightest applies.
  double tightest = 0;
  for (;;) {
    std::ifstream max{"/sys/fs/cgroup" + path + "/cpu.max"};
    std::string quota;
    int64_t period = 0;
    if (max >> quota >> period && quota != "max" && period > 0) {
      try {
        auto cores = static_cast<double>(std::stoll(quota)) / static_cast<double>(period);
        if (cores > 0 && (tightest == 0 || cores < tightest))
          tightest = cores;
      } catch (const std::exception&) {
        // Not a number: no limit read here.
      }
    }
    if (path.empty() || path == "/")
      break;
    auto slash = path.rfind('/');
    path = slash == 0 || slash == std::string::npos ? std::string{"/"} : path.substr(0, slash);
  }
  return tightest;
}

} // namespace

size_t usable_cores() {
  size_t cores = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    cores = static_cast<size_t>(CPU_COUNT(&set));
  if (cores == 0)
    cores = std::thread::hardware_concurrency();
  if (auto quota = cgroup_quota(); quota > 0)
    cores = std::min(cores == 0 ? SIZE_MAX : cores, static_cast<size_t>(std::ceil(quota)));
  return std::max<size_t>(cores, 1);
}

size_t auto_scheduler_threads() {
  return std::min<size_t>(usable_cores(), 4);
}

size_t set_scheduler_threads(caf::actor_system_config& cfg, size_t threads) {
  if (threads == 0)
    threads = auto_scheduler_threads();
  cfg.set("scheduler.max-threads", static_cast<int64_t>(threads));
  return threads;
}

} // namespace castor
