// SPDX-License-Identifier: Apache-2.0
#pragma once

// A mock cluster with topics for one test, with Catch2 checks around
// castor::testing's writer and reader.

#include "castor/pipeline.hpp"
#include "castor/testing/io.hpp"
#include "castor/testing/mock_cluster.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace castor::test {

using castor::testing::header_of;
using castor::testing::record;

class kafka_env {
public:
  explicit kafka_env(const std::vector<std::pair<std::string, int>>& topics) {
    auto started = testing::mock_cluster::start();
    REQUIRE(started);
    cluster = std::move(*started);
    for (auto& [name, partitions] : topics)
      REQUIRE_FALSE(cluster->create_topic(name, partitions));
  }

  const std::string& bootstrap() const { return cluster->bootstrap_servers(); }

  /// Consumer and producer properties for castor, with a short fetch wait.
  pipeline_config config() const {
    pipeline_config cfg;
    cfg.consumer = {{"bootstrap.servers", bootstrap()}, {"fetch.wait.max.ms", "10"}};
    cfg.producer = {{"bootstrap.servers", bootstrap()}, {"linger.ms", "1"}};
    cfg.startup_timeout = std::chrono::seconds{10};
    cfg.flush_timeout = std::chrono::seconds{5};
    return cfg;
  }

  /// Writes `records` in order and waits for every delivery.
  void produce(const std::vector<record>& records) {
    auto err = testing::produce(bootstrap(), records);
    INFO(render(err));
    REQUIRE_FALSE(err);
  }

  /// Reads `topic` from the beginning until `count` records arrived (or
  /// `timeout` passed).
  std::vector<record> read(const std::string& topic, size_t count,
                           std::chrono::milliseconds timeout = std::chrono::seconds{20}) {
    auto result = testing::read(bootstrap(), topic, count, timeout);
    REQUIRE(result);
    return std::move(*result);
  }

  /// The committed offsets of `group` on `topic`'s partitions (-1001
  /// where none).
  std::vector<int64_t> committed(const std::string& group, const std::string& topic,
                                 int partitions) {
    auto result = testing::committed(bootstrap(), group, topic, partitions);
    REQUIRE(result);
    return std::move(*result);
  }

  std::unique_ptr<testing::mock_cluster> cluster;
};

} // namespace castor::test
