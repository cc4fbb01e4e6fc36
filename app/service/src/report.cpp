// SPDX-License-Identifier: Apache-2.0
#include "report.hpp"

#include "castor/version.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "commands.hpp"

namespace castor::service {

namespace {

nlohmann::json time_of(int64_t ms) {
  if (ms == INT64_MIN)
    return nullptr;
  return to_string(timestamp{std::chrono::milliseconds{ms}});
}

nlohmann::json ms_of(int64_t ms) {
  if (ms == INT64_MIN)
    return nullptr;
  return ms;
}

} // namespace

run_report::run_report(std::string path)
    : path_(std::move(path)), started_(wall_clock_now()) {}

void run_report::describe(std::string config, std::string dag, const stop_policy& stop,
                          std::vector<std::string> sink_topics) {
  config_ = std::move(config);
  dag_ = std::move(dag);
  stop_ = stop.to_string();
  sinks_ = std::move(sink_topics);
}

void run_report::record(const pipeline_stats& stats, const caf::error& reason) {
  std::lock_guard<std::mutex> guard{mutex_};
  stats_ = stats;
  reason_ = reason;
}

void run_report::failed(const caf::error& reason) {
  std::lock_guard<std::mutex> guard{mutex_};
  failed_ = reason;
}

bool run_report::write(int code) {
  if (!enabled())
    return true;
  std::lock_guard<std::mutex> guard{mutex_};
  auto stopped = wall_clock_now();
  auto wall = std::chrono::duration<double>(stopped - started_).count();
  auto why = reason_ ? reason_ : failed_;
  pipeline_stats s = stats_.value_or(pipeline_stats{});
  nlohmann::json doc;
  doc["castor"] = version();
  doc["config"] = config_;
  doc["dag"] = dag_;
  doc["stop"] = stop_;
  doc["exit"] = {{"code", code},
                 {"status", exit_meaning(code)},
                 {"reason", why ? render(why) : std::string{"clean stop"}},
                 {"bounded_replay_complete", s.finished}};
  doc["started_at"] = to_string(started_);
  doc["stopped_at"] = to_string(stopped);
  doc["wall_seconds"] = wall;
  doc["figures_known"] = stats_.has_value();
  doc["messages"] = {{"consumed", s.consumed},       {"released", s.released},
                     {"beyond_stop", s.beyond_stop}, {"late", s.late},
                     {"waiting", s.waiting},         {"dead_lettered", s.dead_lettered}};
  doc["cycles"] = s.cycles;
  doc["failed_cycles"] = s.failed_cycles;
  doc["commits"] = s.commits;
  doc["rate_per_s"] = wall > 0 ? static_cast<double>(s.released) / wall : 0.0;
  auto partitions = nlohmann::json::array();
  for (auto& p : s.partitions)
    partitions.push_back(
        {{"topic", p.topic},
         {"partition", p.partition},
         {"start_offset", p.start_offset},
         {"stop_offset", p.next_offset >= 0 ? p.next_offset : p.start_offset},
         {"end_offset_at_start", p.end_offset},
         {"messages", p.released},
         {"beyond_stop", p.beyond_stop},
         {"first_timestamp", time_of(p.first_ms)},
         {"first_timestamp_ms", ms_of(p.first_ms)},
         {"last_timestamp", time_of(p.last_ms)},
         {"last_timestamp_ms", ms_of(p.last_ms)},
         {"reached_stop", p.finished}});
  doc["partitions"] = partitions;
  auto sinks = nlohmann::json::array();
  for (auto& topic : sinks_) {
    topic_counters t{topic};
    for (auto& c : s.topics)
      if (c.topic == topic)
        t = c;
    sinks.push_back({{"topic", topic},
                     {"produced", t.produced},
                     {"delivered", t.delivered},
                     {"delivery_errors", t.delivery_errors}});
  }
  doc["sinks"] = sinks;
  auto tmp = path_ + ".tmp";
  {
    std::ofstream out{tmp};
    out << doc.dump(2) << '\n';
    if (!out) {
      std::cerr << "castor: cannot write the report " << path_ << '\n';
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    std::cerr << "castor: cannot write the report " << path_ << '\n';
    return false;
  }
  return true;
}

} // namespace castor::service
