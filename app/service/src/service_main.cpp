// SPDX-License-Identifier: Apache-2.0
// castor's command line: run, check, broker, --help, --version.

#include "castor/logger.hpp"
#include "castor/service.hpp"
#include "castor/version.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "commands.hpp"

namespace castor {

using namespace service;

namespace {

int run_main(int argc, char** argv, const registry& dags) {
  // Before any thread exists, so that every thread inherits the mask.
  signal_watcher::block_signals();
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  CLI::App app{"castor: ordered replay and live stream processing for Apache Kafka",
               "castor"};
  app.set_version_flag("--version", version_line());
  app.require_subcommand(1);
  app.footer("Exit codes: 0 ok, 1 unexpected, 2 configuration, 3 broker unreachable or "
             "unknown topic, 4 Kafka error, 5 bad input or node failure.");

  std::string config_path;
  std::string log_level;
  std::string addr_file;
  auto* run_cmd = app.add_subcommand("run", "run a pipeline until SIGINT/SIGTERM");
  run_cmd->add_option("--config,-c", config_path, "TOML configuration file")->required();
  run_cmd
      ->add_option("--log-level", log_level,
                   "trace, debug, info, warn, error (default: the "
                   "config's log.level)")
      ->check(
          CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  run_cmd->add_option("--addr-file", addr_file,
                      "write the Kafka bootstrap address here (useful with embedded)");
  std::string stop;
  run_cmd->add_option("--stop", stop,
                      "end the replay there and exit (overrides engine.stop): end, "
                      "absolute:<ISO 8601>, start_of_day:HH:MM@Zone, "
                      "relative:[-|+]<duration>");
  std::string report;
  run_cmd->add_option("--report", report,
                      "write a JSON report of the run to this file at exit");

  auto* check_cmd = app.add_subcommand("check", "validate a configuration and print it");
  check_cmd->add_option("--config,-c", config_path, "TOML configuration file")
      ->required();

  produce_options produce_opts;
  std::vector<std::string> produce_props;
  auto* produce_cmd = app.add_subcommand(
      "produce", "write timestamped records from lines TIMESTAMP<TAB>KEY<TAB>VALUE "
                 "(timestamps in ms since the epoch or ISO 8601; an empty key is none; "
                 "the value is the rest of the line), for backtest data");
  produce_cmd
      ->add_option("--bootstrap,-b", produce_opts.bootstrap, "Kafka bootstrap servers")
      ->required();
  produce_cmd->add_option("--topic,-t", produce_opts.topic, "the topic")->required();
  produce_cmd->add_option("--file,-f", produce_opts.file,
                          "read lines from this file (default: standard input)");
  produce_cmd->add_flag("--partition-column", produce_opts.partition_column,
                        "lines are TIMESTAMP<TAB>PARTITION<TAB>KEY<TAB>VALUE (without it "
                        "librdkafka's partitioner chooses, by key)");
  produce_cmd->add_option("--property,-X", produce_props,
                          "a librdkafka producer property NAME=VALUE, repeatable");

  std::vector<std::string> topics;
  auto* broker_cmd = app.add_subcommand(
      "broker", "run a development broker (librdkafka's mock cluster, in memory) until "
                "SIGINT/SIGTERM. It keeps at most 5 MB (or 100,000 message sets) per "
                "partition and drops older data (logged): size test data to fit, "
                "lz4 helps");
  broker_cmd->add_option("--topic", topics, "NAME:PARTITIONS, repeatable");
  broker_cmd->add_option("--addr-file", addr_file, "write the bootstrap address here");
  std::string fault_every;
  std::string fault_down = "5s";
  int fault_errors = 0;
  broker_cmd->add_option("--fault-every", fault_every,
                         "inject a fault this often (e.g. 30s): for soak tests");
  broker_cmd->add_option("--fault-down", fault_down,
                         "each fault takes the broker down this long (default 5s)");
  std::string rtt;
  broker_cmd->add_option("--rtt", rtt,
                         "every request takes this much longer, e.g. 20ms (a slow "
                         "link, for tests and demos)");
  broker_cmd->add_option("--fault-errors", fault_errors,
                         "each fault also pushes this many retriable errors on fetch "
                         "and produce requests");

  CLI11_PARSE(app, argc, argv);
  try {
    signal_watcher signals;
    if (*run_cmd)
      return run(signals, dags, config_path,
                 run_options{log_level, addr_file, stop, report});
    if (*check_cmd)
      return check(dags, config_path);
    if (*produce_cmd) {
      for (auto& p : produce_props) {
        auto eq = p.find('=');
        if (eq == std::string::npos || eq == 0)
          return fail(make_error(ec::invalid_config,
                                 fmt::format("--property '{}' is not NAME=VALUE", p)));
        produce_opts.properties[p.substr(0, eq)] = p.substr(eq + 1);
      }
      return produce(produce_opts);
    }
    if (*broker_cmd) {
      fault_plan faults;
      faults.errors = fault_errors;
      auto parse = [](const std::string& text, duration& into) {
        auto parsed = parse_duration(text);
        if (!parsed)
          return false;
        into = *parsed;
        return true;
      };
      if ((!fault_every.empty() && !parse(fault_every, faults.every)) ||
          !parse(fault_down, faults.down))
        return fail(make_error(ec::invalid_config,
                               "--fault-every/--fault-down take durations such "
                               "as 30s or 500ms"));
      if (!rtt.empty() &&
          (!parse(rtt, faults.rtt) || faults.rtt > std::chrono::minutes{1}))
        return fail(
            make_error(ec::invalid_config, "--rtt takes a duration up to 1m, e.g. 20ms"));
      if (fault_errors < 0 || fault_errors > 1000)
        return fail(
            make_error(ec::invalid_config,
                       fmt::format("--fault-errors {} is not a count from 0 to 1000",
                                   fault_errors)));
      return broker(signals, topics, addr_file, faults);
    }
  } catch (const std::exception& e) {
    std::cerr << "castor: unexpected error: " << e.what() << '\n';
    return exit_unexpected;
  }
  return exit_unexpected;
}

} // namespace

int service_main(int argc, char** argv) {
  service_main(argc, argv, registry{});
}

int service_main(int argc, char** argv, const registry& dags) {
  auto code = run_main(argc, argv, dags);
  // A librdkafka client may still be closing on a thread of its own (its
  // broker does not answer): exit without waiting for it, and without
  // running static destructors under it.
  std::cout.flush();
  std::cerr.flush();
  logger()->flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

} // namespace castor
