// SPDX-License-Identifier: Apache-2.0
#include "castor/scheduler.hpp"

#include <caf/actor_system_config.hpp>

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace castor {

namespace detail {

namespace {

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(sep, start);
    if (end == std::string_view::npos)
      end = text.size();
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::optional<int64_t> to_int(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.remove_suffix(1);
  int64_t n = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (err != std::errc{} || end != text.data() + text.size() || text.empty())
    return std::nullopt;
  return n;
}

// Where a hierarchy is mounted: its mount point and the group it shows as
// its root (not "/" when mounted from inside a group).
struct mount {
  std::string point;
  std::string root;
};

// The group `path` of a hierarchy mounted at `m`, and every group above it
// that the mount shows: each one's directory.
std::vector<std::string> directories(const mount& m, std::string path) {
  if (m.root != "/" && path.starts_with(m.root))
    path = path.substr(m.root.size());
  if (path.empty() || path.front() != '/')
    path.insert(path.begin(), '/');
  std::vector<std::string> dirs;
  for (;;) {
    dirs.push_back(m.point + (path == "/" ? std::string{} : path));
    if (path == "/")
      break;
    auto slash = path.rfind('/');
    path = slash == 0 ? std::string{"/"} : path.substr(0, slash);
  }
  return dirs;
}

} // namespace

double cgroup_cpu_quota(std::string_view mountinfo, std::string_view cgroups,
                        const file_reader& read) {
  std::optional<mount> v2;
  std::optional<mount> v1_cpu;
  for (auto line : split(mountinfo, '\n')) {
    // "36 25 0:31 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu"
    auto dash = line.find(" - ");
    if (dash == std::string_view::npos)
      continue;
    auto fields = split(line.substr(0, dash), ' ');
    auto tail = split(line.substr(dash + 3), ' ');
    if (fields.size() < 5 || tail.size() < 3)
      continue;
    mount m{std::string{fields[4]}, std::string{fields[3]}};
    if (tail[0] == "cgroup2" && !v2) {
      v2 = m;
    } else if (tail[0] == "cgroup" && !v1_cpu) {
      auto options = split(tail[2], ',');
      if (std::find(options.begin(), options.end(), "cpu") != options.end())
        v1_cpu = m;
    }
  }
  double tightest = 0;
  auto consider = [&](double cores) {
    if (cores > 0 && (tightest == 0 || cores < tightest))
      tightest = cores;
  };
  for (auto line : split(cgroups, '\n')) {
    // "0::/user.slice" (v2), "4:cpu,cpuacct:/docker/abc" (v1)
    auto first = line.find(':');
    auto second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos)
      continue;
    auto controllers = split(line.substr(first + 1, second - first - 1), ',');
    std::string path{line.substr(second + 1)};
    if (line.substr(0, first) == "0" && controllers.size() == 1 &&
        controllers[0].empty()) {
      if (!v2)
        continue;
      for (auto& dir : directories(*v2, path)) {
        // "max 100000" or "200000 100000"
        auto text = read(dir + "/cpu.max");
        if (!text)
          continue;
        auto parts = split(*text, ' ');
        if (parts.size() < 2)
          continue;
        auto quota = to_int(parts[0]);
        auto period = to_int(parts[1]);
        if (quota && period && *quota > 0 && *period > 0)
          consider(static_cast<double>(*quota) / static_cast<double>(*period));
      }
    } else if (v1_cpu && std::find(controllers.begin(), controllers.end(), "cpu") !=
                             controllers.end()) {
      for (auto& dir : directories(*v1_cpu, path)) {
        auto quota = read(dir + "/cpu.cfs_quota_us");
        auto period = read(dir + "/cpu.cfs_period_us");
        if (!quota || !period)
          continue;
        auto q = to_int(*quota); // -1: none
        auto p = to_int(*period);
        if (q && p && *q > 0 && *p > 0)
          consider(static_cast<double>(*q) / static_cast<double>(*p));
      }
    }
  }
  return tightest;
}

} // namespace detail

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
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
  auto mountinfo = read_file("/proc/self/mountinfo");
  auto cgroups = read_file("/proc/self/cgroup");
  if (mountinfo && cgroups)
    if (auto quota = detail::cgroup_cpu_quota(*mountinfo, *cgroups, read_file); quota > 0)
      cores = std::min(cores == 0 ? SIZE_MAX : cores, static_cast<size_t>(std::ceil(quota)));
  return std::max<size_t>(cores, 1);
}

size_t auto_scheduler_threads(size_t cores) {
  return std::clamp<size_t>(cores, 1, 3);
}

size_t set_scheduler_threads(caf::actor_system_config& cfg, size_t threads,
                             size_t cores) {
  if (threads == 0)
    threads = auto_scheduler_threads(cores > 0 ? cores : usable_cores());
  cfg.set("scheduler.max-threads", static_cast<int64_t>(threads));
  return threads;
}

} // namespace castor
