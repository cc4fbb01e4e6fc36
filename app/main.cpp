// SPDX-License-Identifier: Apache-2.0
// The castor service binary: parses the command line, loads the
// configuration, sets up logging, runs a pipeline (or a development broker)
// until SIGINT/SIGTERM, and maps errors to exit codes.

#include "castor/dags/builtin.hpp"
#include "castor/kafka/config.hpp"
#include "castor/logger.hpp"
#include "castor/metrics_endpoint.hpp"
#include "castor/pipeline.hpp"
#include "castor/testing/mock_cluster.hpp"
#include "castor/version.hpp"

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <pthread.h>
#include <set>
#include <thread>

#include "service_config.hpp"

namespace {

/// Exit codes (documented in README.md and docs/operations.md).
enum exit_code : int {
  exit_ok = 0,
  exit_unexpected = 1,
  exit_config = 2,
  exit_broker = 3,
  exit_kafka = 4,
  exit_data = 5,
};

int exit_code_of(const caf::error& err) {
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

// SIGINT and SIGTERM are blocked in every thread (main blocks them before
// any other thread exists) and taken by one watcher thread, which runs from
// the first instant: a signal during start-up stops castor too. The first
// signal asks for an ordered stop; a second one exits at once (nothing is
// committed past what was delivered, so nothing is lost).
class signal_watcher {
public:
  static sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
  }

  signal_watcher() : thread_([this] { watch(); }) {}

  ~signal_watcher() {
    done_ = true;
    // Wakes the watcher at once instead of at its next tick.
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }

  signal_watcher(const signal_watcher&) = delete;
  signal_watcher& operator=(const signal_watcher&) = delete;

  /// Whether a stop signal arrived.
  bool requested() const noexcept { return requested_; }

  /// Runs `on_stop` on the first signal (at once if one came already);
  /// replaces the previous callback. Called from main's thread.
  void on_stop(std::function<void()> on_stop) {
    std::lock_guard guard{mutex_};
    on_stop_ = std::move(on_stop);
    if (requested_ && on_stop_)
      on_stop_();
  }

private:
  void watch() {
    auto set = stop_signals();
    sigaddset(&set, SIGUSR1);
    int seen = 0;
    while (!done_) {
      int sig = sigwaitinfo(&set, nullptr);
      if (sig == SIGUSR1 || sig < 0)
        continue;
      auto name = sig == SIGINT ? "SIGINT" : "SIGTERM";
      if (++seen > 1) {
        castor::logger()->warn("castor: second {}: exits now, without finishing the "
                               "stop (nothing was committed past what was delivered)",
                               name);
        castor::logger()->flush();
        std::_Exit(exit_unexpected);
      }
      castor::logger()->info("castor: {} received: stopping", name);
      std::lock_guard guard{mutex_};
      requested_ = true;
      if (on_stop_)
        on_stop_();
    }
  }

  std::atomic<bool> done_{false};
  std::atomic<bool> requested_{false};
  std::mutex mutex_;
  std::function<void()> on_stop_;
  std::thread thread_;
};

bool write_addr_file(const std::string& path, const std::string& bootstrap) {
  if (path.empty())
    return true;
  std::ofstream out{path + ".tmp"};
  out << bootstrap << '\n';
  out.close();
  return out && std::rename((path + ".tmp").c_str(), path.c_str()) == 0;
}

caf::expected<std::unique_ptr<castor::testing::mock_cluster>>
start_broker(const std::vector<castor::kafka::topic_spec>& topics) {
  auto cluster = castor::testing::mock_cluster::start();
  if (!cluster)
    return castor::to_error(cluster.error());
  for (auto& t : topics)
    if (auto err = (*cluster)->create_topic(t.name, t.partitions))
      return castor::to_error(err);
  return std::move(*cluster);
}

int fail(const caf::error& err) {
  std::cerr << "castor: " << castor::render(err) << '\n';
  return exit_code_of(err);
}

// A stop signal during start-up: exit 0 without starting anything more.
int stopped_during_startup() {
  castor::logger()->info("castor: stopped during start-up");
  return exit_ok;
}

int run(signal_watcher& signals, const std::string& path, const std::string& log_level,
        const std::string& addr_file) {
  auto cfg = castor::service::load(path);
  if (!cfg)
    return fail(cfg.error());
  spdlog::set_level(
      spdlog::level::from_str(log_level.empty() ? cfg->log_level : log_level));
  castor::logger()->set_level(spdlog::get_level());
  std::unique_ptr<castor::testing::mock_cluster> cluster;
  // The embedded broker's destructor waits up to a second for its threads:
  // at exit the process lets the system reclaim it instead.
  auto leave_cluster = [&] { (void)cluster.release(); };
  std::string bootstrap = cfg->bootstrap_servers;
  if (cfg->embedded()) {
    auto started = start_broker(cfg->embedded_topics);
    if (!started)
      return fail(started.error());
    cluster = std::move(*started);
    cluster->watch_retention(cfg->embedded_topics);
    bootstrap = cluster->bootstrap_servers();
    castor::logger()->info("castor: embedded broker (in memory, for development) at {}",
                           bootstrap);
  }
  if (!write_addr_file(addr_file, bootstrap))
    return fail(castor::make_error(castor::ec::invalid_config,
                                   "cannot write the address file " + addr_file));
  if (signals.requested())
    return stopped_during_startup();
  auto def = castor::dags::make(cfg->dag, cfg->sources, cfg->sinks);
  if (!def)
    return fail(def.error());
  caf::actor_system_config sys_cfg;
  castor::add_message_types(sys_cfg);
  caf::error result;
  {
    caf::actor_system sys{sys_cfg};
    castor::logger()->info("castor: runs dag '{}' ({} source(s), {} sink(s)) on {}",
                           cfg->dag, cfg->sources.size(), cfg->sinks.size(), bootstrap);
    auto pipeline = castor::spawn_pipeline(sys, *def, cfg->to_pipeline_config(bootstrap));
    signals.on_stop([pipeline] { caf::anon_send(pipeline, castor::stop_atom::value); });
    std::unique_ptr<castor::metrics_endpoint> metrics;
    if (!cfg->metrics_listen.empty()) {
      auto started = castor::metrics_endpoint::start(sys, pipeline, cfg->metrics_listen);
      if (!started) {
        caf::anon_send(pipeline, castor::stop_atom::value);
        castor::wait_for(sys, pipeline);
        signals.on_stop({});
        leave_cluster();
        return fail(started.error());
      }
      metrics = std::move(*started);
    }
    result = castor::wait_for(sys, pipeline);
    signals.on_stop({});
  }
  leave_cluster();
  if (result)
    return fail(result);
  return exit_ok;
}

int check(const std::string& path) {
  auto cfg = castor::service::load(path);
  if (!cfg)
    return fail(cfg.error());
  std::cout << "# " << path << ": valid; effective configuration (secrets masked):\n\n"
            << castor::service::to_toml(*cfg);
  return exit_ok;
}

// Fault injection for soak tests: every `every`, the broker is down for
// `down` (connections closed and refused), and `errors` retriable errors
// are pushed on fetch and on produce requests.
struct fault_plan {
  castor::duration every{0};
  castor::duration down{0};
  int errors = 0;
  /// Every request takes this much longer (a slow link; 0: none).
  castor::duration rtt{0};
};

void inject_fault(castor::testing::mock_cluster& cluster, const fault_plan& plan,
                  const std::atomic<bool>& stop) {
  if (plan.errors > 0)
    cluster.push_retriable_errors(plan.errors);
  if (plan.down <= castor::duration::zero())
    return;
  castor::logger()->warn(
      "castor: fault: broker down for {} ms",
      std::chrono::duration_cast<std::chrono::milliseconds>(plan.down).count());
  (void)cluster.set_down(true);
  auto until = std::chrono::steady_clock::now() + plan.down;
  while (!stop && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  (void)cluster.set_down(false);
  castor::logger()->warn("castor: fault: broker up again");
}

int broker(signal_watcher& signals, const std::vector<std::string>& topics,
           const std::string& addr_file, const fault_plan& faults) {
  std::vector<castor::kafka::topic_spec> parsed;
  std::set<std::string> names;
  for (auto& t : topics) {
    auto spec = castor::kafka::parse_topic_spec(t);
    if (!spec)
      return fail(castor::make_error(castor::ec::invalid_config,
                                     "--topic " + castor::message_of(spec.error())));
    if (!names.insert(spec->name).second)
      return fail(castor::make_error(castor::ec::invalid_config,
                                     "--topic '" + spec->name + "' is given twice"));
    parsed.push_back(std::move(*spec));
  }
  auto cluster = start_broker(parsed);
  if (!cluster)
    return fail(cluster.error());
  if (faults.rtt > castor::duration::zero())
    (void)(*cluster)->set_rtt(
        std::chrono::duration_cast<std::chrono::milliseconds>(faults.rtt));
  (*cluster)->watch_retention(parsed);
  auto& bootstrap = (*cluster)->bootstrap_servers();
  if (!write_addr_file(addr_file, bootstrap))
    return fail(castor::make_error(castor::ec::invalid_config,
                                   "cannot write the address file " + addr_file));
  std::cout << bootstrap << std::endl;
  castor::logger()->info("castor: development broker (librdkafka's mock cluster, data in "
                         "memory) at {}; Ctrl-C stops it",
                         bootstrap);
  std::atomic<bool> stop{false};
  signals.on_stop([&stop] { stop = true; });
  auto next_fault = std::chrono::steady_clock::now() + faults.every;
  while (!stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
    if (faults.every > castor::duration::zero() &&
        std::chrono::steady_clock::now() >= next_fault) {
      inject_fault(**cluster, faults, stop);
      next_fault = std::chrono::steady_clock::now() + faults.every;
    }
  }
  signals.on_stop({});
  castor::logger()->info("castor: broker stopped");
  return exit_ok;
}

} // namespace

static int run_main(int argc, char** argv) {
  // Before any thread exists, so that every thread inherits the mask.
  auto blocked = signal_watcher::stop_signals();
  sigaddset(&blocked, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  CLI::App app{"castor: ordered replay and live stream processing for Apache Kafka",
               "castor"};
  app.set_version_flag("--version", castor::version_line());
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

  auto* check_cmd = app.add_subcommand("check", "validate a configuration and print it");
  check_cmd->add_option("--config,-c", config_path, "TOML configuration file")
      ->required();

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
      return run(signals, config_path, log_level, addr_file);
    if (*check_cmd)
      return check(config_path);
    if (*broker_cmd) {
      fault_plan faults;
      faults.errors = fault_errors;
      auto parse = [](const std::string& text, castor::duration& into) {
        auto parsed = castor::parse_duration(text);
        if (!parsed)
          return false;
        into = *parsed;
        return true;
      };
      if ((!fault_every.empty() && !parse(fault_every, faults.every)) ||
          !parse(fault_down, faults.down))
        return fail(castor::make_error(castor::ec::invalid_config,
                                       "--fault-every/--fault-down take durations such "
                                       "as 30s or 500ms"));
      if (!rtt.empty() &&
          (!parse(rtt, faults.rtt) || faults.rtt > std::chrono::minutes{1}))
        return fail(castor::make_error(castor::ec::invalid_config,
                                       "--rtt takes a duration up to 1m, e.g. 20ms"));
      if (fault_errors < 0 || fault_errors > 1000)
        return fail(castor::make_error(
            castor::ec::invalid_config,
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

int main(int argc, char** argv) {
  auto code = run_main(argc, argv);
  // A librdkafka client may still be closing on a thread of its own (its
  // broker does not answer): exit without waiting for it, and without
  // running static destructors under it.
  std::cout.flush();
  std::cerr.flush();
  castor::logger()->flush();
  std::fflush(nullptr);
  std::_Exit(code);
}
