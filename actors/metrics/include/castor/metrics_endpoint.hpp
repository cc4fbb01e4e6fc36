// SPDX-License-Identifier: Apache-2.0
#pragma once

// A pipeline's figures in Prometheus' text format (library castor::metrics,
// built on prometheus-cpp). The same figures are readable in-process with a
// `stats_atom` request to the pipeline (castor/protocol.hpp, pipeline_stats).

#include "castor/actors.hpp"
#include "castor/protocol.hpp"

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include <memory>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <string>
#include <vector>

namespace castor {

/// `stats` as Prometheus metric families (`castor_*`); `now` is the wall
/// clock the watermark's lag is measured against.
std::vector<prometheus::MetricFamily> to_metric_families(const pipeline_stats& stats,
                                                         timestamp now);

/// A collectable that asks `pipeline` for its figures at each scrape (for an
/// application that runs its own prometheus::Exposer or registry).
std::shared_ptr<prometheus::Collectable> make_collectable(caf::actor_system& sys,
                                                          pipeline_actor pipeline);

/// Serves `pipeline`'s figures at http://LISTEN/metrics while it lives.
class metrics_endpoint {
public:
  /// Binds `listen` ("host:port"; port 0 picks a free port); fails with
  /// `invalid_config` naming the address when it cannot.
  static caf::expected<std::unique_ptr<metrics_endpoint>>
  start(caf::actor_system& sys, pipeline_actor pipeline, const std::string& listen);

  ~metrics_endpoint();
  metrics_endpoint(const metrics_endpoint&) = delete;
  metrics_endpoint& operator=(const metrics_endpoint&) = delete;

  /// The port it listens on.
  int port() const;

private:
  struct impl;
  explicit metrics_endpoint(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace castor
