// SPDX-License-Identifier: Apache-2.0
// `castor run` and `castor check`.

#include "castor/logger.hpp"
#include "castor/metrics_endpoint.hpp"
#include "castor/pipeline.hpp"
#include "castor/scheduler.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "report.hpp"
#include "service_config.hpp"

namespace castor::service {

bool write_addr_file(const std::string& path, const std::string& bootstrap) {
  if (path.empty())
    return true;
  std::ofstream out{path + ".tmp"};
  out << bootstrap << '\n';
  out.close();
  return out && std::rename((path + ".tmp").c_str(), path.c_str()) == 0;
}

caf::expected<std::unique_ptr<testing::mock_cluster>>
start_broker(const std::vector<kafka::topic_spec>& topics) {
  auto cluster = castor::testing::mock_cluster::start();
  if (!cluster)
    return castor::to_error(cluster.error());
  for (auto& t : topics)
    if (auto err = (*cluster)->create_topic(t.name, t.partitions))
      return castor::to_error(err);
  return std::move(*cluster);
}

// A stop signal during start-up: exit 0 without starting anything more.
int stopped_during_startup() {
  castor::logger()->info("castor: stopped during start-up");
  return exit_ok;
}

namespace {

int run_pipeline(signal_watcher& signals, registry& dags, const std::string& path,
                 const run_options& options, run_report& report);

} // namespace

int run(signal_watcher& signals, registry dags, const std::string& path,
        const run_options& options) {
  run_report report{options.report};
  report.describe(path, "", stop_policy{}, {});
  auto code = run_pipeline(signals, dags, path, options, report);
  if (!report.write(code))
    return code == exit_ok ? exit_unexpected : code;
  return code;
}

namespace {

int run_pipeline(signal_watcher& signals, registry& dags, const std::string& path,
                 const run_options& options, run_report& report) {
  auto& log_level = options.log_level;
  auto& addr_file = options.addr_file;
  auto fail = [&](const caf::error& err) {
    report.failed(err);
    return service::fail(err);
  };
  auto cfg = load(path, dags);
  if (!cfg)
    return fail(cfg.error());
  {
    std::vector<std::string> sinks;
    for (auto& s : cfg->sinks)
      sinks.push_back(s.topic);
    if (!cfg->pipeline.dead_letter_topic.empty())
      sinks.push_back(cfg->pipeline.dead_letter_topic);
    report.describe(path, cfg->dag, cfg->pipeline.stop, sinks);
    if (!options.stop.empty()) {
      auto stop = stop_policy::parse(options.stop);
      if (!stop)
        return fail(make_error(ec::invalid_config,
                               fmt::format("--stop: {}", message_of(stop.error()))));
      cfg->pipeline.stop = *stop;
    }
    // A stop time is resolved once, now (the report names the time).
    if (cfg->pipeline.stop.what == stop_policy::kind::at) {
      auto t = cfg->pipeline.stop.resolve(wall_clock_now());
      if (!t)
        return fail(to_error(t.error()));
      cfg->pipeline.stop = stop_policy::at(*t);
    }
    report.describe(path, cfg->dag, cfg->pipeline.stop, std::move(sinks));
  }
  spdlog::set_level(
      spdlog::level::from_str(log_level.empty() ? cfg->log_level : log_level));
  castor::logger()->set_level(spdlog::get_level());
  std::unique_ptr<testing::mock_cluster> cluster;
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
  auto def = dags.make(cfg->dag, dag_config_of(*cfg));
  if (!def)
    return fail(def.error());
  caf::actor_system_config sys_cfg;
  castor::add_message_types(sys_cfg);
  auto cores = castor::usable_cores();
  auto threads = castor::set_scheduler_threads(sys_cfg, cfg->threads, cores);
  if (threads > cores)
    castor::logger()->warn("castor: engine.threads = {} is more than the {} usable core(s): "
                           "idle CAF workers poll and take CPU from the busy threads "
                           "(\"auto\" starts {})",
                           threads, cores, castor::auto_scheduler_threads(cores));
  caf::error result;
  {
    caf::actor_system sys{sys_cfg};
    castor::logger()->info(
        "castor: runs dag '{}' ({} source(s), {} sink(s)) on {} with {} scheduler "
        "thread(s) (engine.threads = {}; {} usable core(s))",
        cfg->dag, cfg->sources.size(), cfg->sinks.size(), bootstrap, threads,
        threads_to_string(cfg->threads), cores);
    auto pcfg = cfg->to_pipeline_config(bootstrap);
    if (report.enabled())
      pcfg.on_exit = [&report](const pipeline_stats& s, const caf::error& reason) {
        report.record(s, reason);
      };
    auto pipeline = castor::spawn_pipeline(sys, *def, std::move(pcfg));
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

} // namespace

int check(registry dags, const std::string& path) {
  auto cfg = load(path, dags);
  if (!cfg)
    return fail(cfg.error());
  std::cout << "# " << path << ": valid; effective configuration (secrets masked):\n\n"
            << to_toml(*cfg) << "\n# DAGs castor can run with this configuration:\n";
  for (auto& name : dags.names())
    std::cout << "#   " << name << " (" << dags.origin(name) << ")"
              << (name == cfg->dag ? ": engine.dag, checked against the sources and sinks"
                                   : "")
              << '\n';
  return exit_ok;
}

} // namespace castor::service
