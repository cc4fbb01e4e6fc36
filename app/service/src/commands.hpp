// SPDX-License-Identifier: Apache-2.0
#pragma once

// The pieces of castor's command line: exit codes, the signal watcher, and
// the commands (run, check, broker). service_main (castor/service.hpp) puts
// them together.

#include "castor/error.hpp"
#include "castor/kafka/config.hpp"
#include "castor/registry.hpp"
#include "castor/testing/mock_cluster.hpp"

#include <caf/expected.hpp>

#include <atomic>
#include <csignal>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace castor::service {

/// Exit codes (documented in README.md and docs/operations.md).
enum exit_code : int {
  exit_ok = 0,
  exit_unexpected = 1,
  exit_config = 2,
  exit_broker = 3,
  exit_kafka = 4,
  exit_data = 5,
};

/// What an exit code means (run reports).
inline const char* exit_meaning(int code) {
  switch (code) {
  case exit_ok:
    return "ok";
  case exit_config:
    return "configuration error";
  case exit_broker:
    return "broker unreachable or unknown topic";
  case exit_kafka:
    return "Kafka error";
  case exit_data:
    return "bad input or node failure";
  default:
    return "unexpected error";
  }
}

inline int exit_code_of(const caf::error& err) {
  using castor::ec;
  switch (castor::code_of(err)) {
  case ec::none:
    return err ? exit_unexpected : exit_ok;
  case ec::invalid_config:
  case ec::kafka_config:
  case ec::invalid_time_zone:
    return exit_config;
  case ec::broker_unreachable:
  case ec::broker_timeout:
  case ec::unknown_topic:
  case ec::no_partitions:
    return exit_broker;
  case ec::kafka_error:
  case ec::fatal_kafka_error:
  case ec::produce_failed:
  case ec::offset_out_of_range:
    return exit_kafka;
  case ec::deserialize_failed:
  case ec::node_failed:
  case ec::serialize_failed:
    return exit_data;
  case ec::stopped:
    return exit_unexpected;
  }
  return exit_unexpected;
}

/// Prints `err` on stderr and returns its exit code.
int fail(const caf::error& err);

/// SIGINT and SIGTERM are blocked in every thread (service_main blocks them
/// before any other thread exists) and taken by one watcher thread, which
/// runs from the first instant: a signal during start-up stops castor too.
/// The first signal asks for an ordered stop; a second one exits at once
/// (nothing is committed past what was delivered, so nothing is lost).
class signal_watcher {
public:
  /// SIGINT and SIGTERM.
  static sigset_t stop_signals();

  /// Blocks the stop signals (and the watcher's own wake-up signal) in the
  /// calling thread: call it before any other thread exists.
  static void block_signals();

  signal_watcher();
  ~signal_watcher();

  signal_watcher(const signal_watcher&) = delete;
  signal_watcher& operator=(const signal_watcher&) = delete;

  /// Whether a stop signal arrived.
  bool requested() const noexcept { return requested_; }

  /// Runs `on_stop` on the first signal (at once if one came already);
  /// replaces the previous callback.
  void on_stop(std::function<void()> on_stop);

private:
  void watch();

  std::atomic<bool> done_{false};
  std::atomic<bool> requested_{false};
  std::mutex mutex_;
  std::function<void()> on_stop_;
  std::thread thread_;
};

/// Writes the bootstrap address to `path` (nothing for an empty path).
bool write_addr_file(const std::string& path, const std::string& bootstrap);

/// A development broker (librdkafka's mock cluster) with these topics.
caf::expected<std::unique_ptr<testing::mock_cluster>>
start_broker(const std::vector<kafka::topic_spec>& topics);

/// What `castor run` takes besides the configuration file.
struct run_options {
  /// Overrides log.level (empty: the file's).
  std::string log_level;
  /// Where to write the bootstrap address (empty: nowhere).
  std::string addr_file;
  /// Overrides engine.stop (empty: the file's).
  std::string stop;
  /// Where to write the JSON run report at exit (empty: none).
  std::string report;
};

/// `castor run`: runs the configured pipeline (a DAG of `dags`, or of a
/// plugin the configuration loads) until a signal, or, for a bounded
/// replay, until it is complete.
int run(signal_watcher& signals, registry dags, const std::string& path,
        const run_options& options);

/// What `castor produce` takes.
struct produce_options {
  std::string bootstrap;
  std::string topic;
  /// A file of lines, or "-" / empty for standard input.
  std::string file;
  /// Lines carry a partition column after the timestamp.
  bool partition_column = false;
  /// librdkafka producer properties.
  kafka::properties properties;
};

/// `castor produce`: writes records from lines TIMESTAMP<TAB>KEY<TAB>VALUE
/// (TIMESTAMP<TAB>PARTITION<TAB>KEY<TAB>VALUE with a partition column),
/// timestamps in ms since the epoch or ISO 8601; stops at the first bad
/// line, naming it, after delivering what came before (exit 5).
int produce(const produce_options& options);

/// `castor check`: validates a configuration, prints it and lists the DAGs
/// castor can run with it.
int check(registry dags, const std::string& path);

/// Fault injection for soak tests: every `every`, the broker is down for
/// `down` (connections closed and refused), and `errors` retriable errors
/// are pushed on fetch and on produce requests.
struct fault_plan {
  duration every{0};
  duration down{0};
  int errors = 0;
  /// Every request takes this much longer (a slow link; 0: none).
  duration rtt{0};
};

/// `castor broker`: a development broker until a signal.
int broker(signal_watcher& signals, const std::vector<std::string>& topics,
           const std::string& addr_file, const fault_plan& faults);

} // namespace castor::service
