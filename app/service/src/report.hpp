// SPDX-License-Identifier: Apache-2.0
#pragma once

// `castor run --report FILE`: a JSON report of the run, written at exit
// whatever ended it (docs/operations.md, "Run reports").

#include "castor/pipeline.hpp"

#include <caf/error.hpp>

#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace castor::service {

class run_report {
public:
  /// Nothing is written when `path` is empty.
  explicit run_report(std::string path);

  bool enabled() const noexcept { return !path_.empty(); }

  /// What the run is: its configuration file, DAG, stop and sink topics.
  void describe(std::string config, std::string dag, const stop_policy& stop,
                std::vector<std::string> sink_topics);

  /// The pipeline's last figures (pipeline_config::on_exit; any thread).
  void record(const pipeline_stats& stats, const caf::error& reason);

  /// Why the run failed when the pipeline reported no reason (a
  /// configuration error, a broker that did not start).
  void failed(const caf::error& reason);

  /// Writes the report for exit code `code`. Returns false, saying why on
  /// stderr, when the file cannot be written.
  bool write(int code);

private:
  std::string path_;
  timestamp started_;
  std::string config_;
  std::string dag_;
  std::string stop_;
  std::vector<std::string> sinks_;
  std::mutex mutex_;
  std::optional<pipeline_stats> stats_;
  caf::error reason_;
  caf::error failed_;
};

} // namespace castor::service
