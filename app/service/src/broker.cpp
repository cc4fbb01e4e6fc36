// SPDX-License-Identifier: Apache-2.0
// `castor broker`: librdkafka's mock cluster as a development broker, with
// fault injection for soak tests.

#include "castor/logger.hpp"

#include <chrono>
#include <iostream>
#include <set>
#include <thread>

#include "commands.hpp"

namespace castor::service {

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

} // namespace castor::service
