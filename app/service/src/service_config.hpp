// SPDX-License-Identifier: Apache-2.0
#pragma once

// The castor service's configuration file (TOML): loading, checking, and
// printing with secrets masked. Every key is documented in config/.

#include "castor/dags/builtin.hpp"
#include "castor/kafka/config.hpp"
#include "castor/pipeline.hpp"
#include "castor/registry.hpp"

#include <caf/expected.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace castor::service {

/// Everything `castor run` needs.
struct service_config {
  /// The file it came from (for messages).
  std::string path;
  /// "embedded" or "host1:9092,host2:9092".
  std::string bootstrap_servers;
  std::string group_id;
  /// librdkafka properties and engine settings, with the library's defaults
  /// (`bootstrap.servers` and `group.id` are added by `to_pipeline_config`).
  pipeline_config pipeline;
  /// A DAG of the registry (built-in, the program's, or a plugin's).
  std::string dag;
  /// The plugins loaded (`engine.plugins`, as resolved: relative to the
  /// configuration file's folder).
  std::vector<std::string> plugins;
  /// `[engine.params]`, for the DAG's factory.
  dag_params params;
  /// spdlog level name: trace, debug, info, warn, error, critical, off.
  std::string log_level = "info";
  std::vector<dags::source_spec> sources;
  std::vector<dags::sink_spec> sinks;
  /// Topics the embedded broker creates.
  std::vector<kafka::topic_spec> embedded_topics;
  /// engine.threads: CAF scheduler threads (0: "auto", castor::auto_scheduler_threads).
  size_t threads = 0;
  /// "host:port" of the Prometheus endpoint (empty: off).
  std::string metrics_listen;

  bool embedded() const noexcept { return bootstrap_servers == "embedded"; }

  /// The pipeline configuration, with `bootstrap` as the cluster's address.
  pipeline_config to_pipeline_config(const std::string& bootstrap) const;
};

/// Loads and checks `path`: loads the plugins it names into `dags`, and
/// builds its DAG from `dags` (the sources, sinks and parameters must suit
/// it). Errors (`ec::invalid_config`, or `ec::kafka_config` when librdkafka
/// rejects a property) name the file, the line and the key: unknown keys,
/// wrong types, bad values, a bad plugin.
caf::expected<service_config> load(const std::string& path, registry& dags);

/// "max" (0: as fast as possible) or "<N>x" (N > 0).
std::optional<double> parse_replay_speed(std::string_view text);

/// engine.memory_budget: "<N>" bytes or "<N>KiB|MiB|GiB" (also KB, MB, GB:
/// powers of 1000); "0" or "off": none.
std::optional<size_t> parse_memory_budget(std::string_view text);

/// engine.threads: "auto" (0) or 1 to 256 (as an integer's digits).
std::optional<size_t> parse_threads(std::string_view text);
std::string threads_to_string(size_t threads);

/// The config spelling of a memory budget ("256MiB", "off").
std::string memory_budget_to_string(size_t bytes);
std::string replay_speed_to_string(double speed);

/// The DAG's configuration: sources, sinks and parameters.
dag_config dag_config_of(const service_config& cfg);

/// The effective configuration as TOML, with secrets (passwords, keys,
/// secrets, tokens) masked.
std::string to_toml(const service_config& cfg);

} // namespace castor::service
