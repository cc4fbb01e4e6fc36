// SPDX-License-Identifier: Apache-2.0
// How many scheduler threads castor starts: no more than the cores this
// process may use (its affinity, its cgroup's CPU quota), at most three,
// and the count set is the count CAF starts.

#include "castor/scheduler.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include <catch2/catch.hpp>

#include <sched.h>

#include <algorithm>
#include <map>
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
  CHECK(castor::auto_scheduler_threads() >= 1);
  CHECK(castor::auto_scheduler_threads() <= 3);
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

namespace {

// A file system of a few files for cgroup_cpu_quota.
castor::detail::file_reader files(std::map<std::string, std::string> contents) {
  return [contents = std::move(contents)](const std::string& path) {
    auto i = contents.find(path);
    return i == contents.end() ? std::nullopt : std::optional<std::string>{i->second};
  };
}

constexpr std::string_view v2_mount =
    "24 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 "
    "cgroup2 rw,nsdelegate,memory_recursiveprot\n";
constexpr std::string_view v1_mounts =
    "31 23 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
    "33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n";

} // namespace

TEST_CASE("scheduler: a cgroup v2 quota bounds the cores, the tightest of the "
          "group and those above it",
          "[scheduler]") {
  using castor::detail::cgroup_cpu_quota;
  auto fs = files({{"/sys/fs/cgroup/kubepods/pod1/c1/cpu.max", "max 100000\n"},
                   {"/sys/fs/cgroup/kubepods/pod1/cpu.max", "150000 100000\n"},
                   {"/sys/fs/cgroup/kubepods/cpu.max", "400000 100000\n"}});
  CHECK(cgroup_cpu_quota(v2_mount, "0::/kubepods/pod1/c1\n", fs) == 1.5);
  // No limit anywhere ("max"), no such files, or no cgroup v2 mounted.
  CHECK(cgroup_cpu_quota(v2_mount, "0::/user.slice\n",
                         files({{"/sys/fs/cgroup/user.slice/cpu.max", "max 100000"}})) ==
        0);
  CHECK(cgroup_cpu_quota(v2_mount, "0::/elsewhere\n", fs) == 0);
  CHECK(cgroup_cpu_quota("", "0::/kubepods/pod1/c1\n", fs) == 0);
  // Mounted from inside the group (a cgroup namespace): the mount's root is
  // the group itself.
  constexpr std::string_view inside =
      "24 30 0:22 /kubepods/pod1/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
  CHECK(cgroup_cpu_quota(inside, "0::/kubepods/pod1/c1\n",
                         files({{"/sys/fs/cgroup/cpu.max", "50000 100000"}})) == 0.5);
  CHECK(cgroup_cpu_quota(inside, "0::/\n",
                         files({{"/sys/fs/cgroup/cpu.max", "200000 100000"}})) == 2);
}

TEST_CASE("scheduler: a cgroup v1 CFS quota bounds the cores", "[scheduler]") {
  using castor::detail::cgroup_cpu_quota;
  auto cgroups = "12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n";
  CHECK(cgroup_cpu_quota(
            v1_mounts, cgroups,
            files({{"/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "200000\n"},
                   {"/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n"},
                   {"/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n"},
                   {"/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n"}})) == 2);
  // -1: no quota.
  CHECK(cgroup_cpu_quota(
            v1_mounts, cgroups,
            files({{"/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n"},
                   {"/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us",
                    "100000\n"}})) == 0);
  // The cpuset hierarchy is not the cpu one.
  CHECK(cgroup_cpu_quota(
            v1_mounts, "3:cpuset:/docker/abc\n",
            files({{"/sys/fs/cgroup/cpuset/docker/abc/cpu.cfs_quota_us", "100000"},
                   {"/sys/fs/cgroup/cpuset/docker/abc/cpu.cfs_period_us", "100000"}})) == 0);
}
