// SPDX-License-Identifier: Apache-2.0
// Metrics: the Prometheus endpoint scraped over HTTP while a
// pipeline runs against librdkafka's mock cluster, checked against what was
// sent; the same figures from an in-process stats request.

#include "castor/dags/builtin.hpp"
#include "castor/metrics_endpoint.hpp"
#include "castor/pipeline.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <arpa/inet.h>
#include <map>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

#include "kafka_env.hpp"
#include "pipeline_fixture.hpp"

using namespace std::chrono_literals;
using castor::start_policy;
using castor::test::kafka_env;
using castor::test::record;
using castor::test::system_fixture;
using castor::test::t0;
using castor::test::wait_until;

namespace {

// GET http://127.0.0.1:PORT/metrics; the body.
std::string scrape(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  REQUIRE(::send(fd, request.data(), request.size(), 0) ==
          static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0)
    response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  REQUIRE(response.rfind("HTTP/1.1 200", 0) == 0);
  auto body = response.find("\r\n\r\n");
  REQUIRE(body != std::string::npos);
  return response.substr(body + 4);
}

// Samples by their full name with labels, e.g.
// castor_consumed_messages_total{topic="a"}.
std::map<std::string, double> samples_of(const std::string& text) {
  std::map<std::string, double> result;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    auto space = line.rfind(' ');
    result[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return result;
}

double sample(const std::map<std::string, double>& samples, const std::string& name) {
  auto i = samples.find(name);
  INFO(name);
  REQUIRE(i != samples.end());
  return i->second;
}

} // namespace

TEST_CASE("the Prometheus endpoint serves what the pipeline counted, per topic, "
          "partition and node",
          "[integration][metrics]") {
  kafka_env env{{{"a", 2}, {"b", 2}, {"out", 1}}};
  std::vector<record> input;
  for (int i = 0; i < 3000; ++i)
    input.push_back({i % 3 == 0 ? "b" : "a", i % 2, "k" + std::to_string(i),
                     std::to_string(i), t0 + i});
  // In small chunks: record batches of ~50, so that small fetches take
  // many round trips.
  for (size_t i = 0; i < input.size(); i += 50)
    env.produce({input.begin() + static_cast<long>(i),
                 input.begin() + static_cast<long>(std::min(i + 50, input.size()))});
  system_fixture fx;
  auto cfg = env.config();
  // Small fetches and 10 ms per request: the replay takes a while, so the
  // first scrape sees it under way.
  cfg.consumer["max.partition.fetch.bytes"] = "2048";
  cfg.batch_size = 100;
  REQUIRE(rd_kafka_mock_broker_set_rtt(env.cluster->get(), 1, 10) ==
          RD_KAFKA_RESP_ERR_NO_ERROR);
  auto def = castor::dags::copy(
      {{"a", "a", start_policy::earliest()}, {"b", "b", start_policy::earliest()}},
      {{"out", "out"}});
  REQUIRE(def);
  auto pipeline = fx.run(*def, cfg);
  auto endpoint = castor::metrics_endpoint::start(*fx.sys, pipeline, "127.0.0.1:0");
  REQUIRE(endpoint);
  auto port = (*endpoint)->port();
  REQUIRE(port > 0);

  wait_until(*fx.sys, pipeline, [](auto& s) { return s.consumed > 0; });
  auto early = samples_of(scrape(port));
  if (sample(early, "castor_live") == 0) {
    // Under way: progress below 1 somewhere, an estimate, a watermark.
    double progress = 0;
    for (auto topic : {"a", "b"})
      for (auto p : {"0", "1"})
        progress += sample(early, fmt::format("castor_partition_replay_progress_ratio{{"
                                              "topic=\"{}\",partition=\"{}\"}}",
                                              topic, p));
    CHECK(progress < 4.0);
    CHECK(early.count("castor_replay_eta_seconds") == 1);
    // In replay the lag is the watermark's age (the input is from t0,
    // January 2026); there is a lag exactly when there is a watermark.
    REQUIRE(early.count("castor_watermark_lag_seconds") ==
            early.count("castor_watermark_seconds"));
    if (early.count("castor_watermark_seconds") == 1)
      CHECK(sample(early, "castor_watermark_lag_seconds") > 3600);
  } else {
    WARN("the replay was over before the first scrape");
  }

  REQUIRE(rd_kafka_mock_broker_set_rtt(env.cluster->get(), 1, 0) ==
          RD_KAFKA_RESP_ERR_NO_ERROR);
  auto s = wait_until(
      *fx.sys, pipeline, [](auto& s) { return s.live && s.delivered == 3000; }, 60s);
  auto m = samples_of(scrape(port));

  // Per topic: 1000 inputs to b, 2000 to a, 3000 records out.
  CHECK(sample(m, R"(castor_consumed_messages_total{topic="a"})") == 2000);
  CHECK(sample(m, R"(castor_consumed_messages_total{topic="b"})") == 1000);
  CHECK(sample(m, R"(castor_released_messages_total{topic="a"})") == 2000);
  CHECK(sample(m, R"(castor_released_messages_total{topic="b"})") == 1000);
  CHECK(sample(m, R"(castor_produced_records_total{topic="out"})") == 3000);
  CHECK(sample(m, R"(castor_delivered_records_total{topic="out"})") == 3000);
  CHECK(sample(m, R"(castor_delivery_errors_total{topic="out"})") == 0);
  CHECK(m.count(R"(castor_consumed_messages_total{topic="out"})") == 0);
  // Per partition: every input read, nothing left, replay done.
  for (auto topic : {"a", "b"})
    for (auto p : {0, 1}) {
      auto labels = fmt::format("{{topic=\"{}\",partition=\"{}\"}}", topic, p);
      auto expected = topic == std::string{"a"} ? 1000.0 : 500.0;
      CHECK(sample(m, "castor_partition_position" + labels) == expected);
      CHECK(sample(m, "castor_partition_lag_messages" + labels) == 0);
      CHECK(sample(m, "castor_partition_replay_progress_ratio" + labels) == 1);
      CHECK(sample(m, "castor_partition_assigned" + labels) == 1);
    }
  // Manual assignment: every partition read, no rebalance.
  CHECK(sample(m, "castor_assigned_partitions") == 4);
  CHECK(sample(m, "castor_rebalances_total") == 0);
  CHECK(sample(m, "castor_revoked_dropped_messages_total") == 0);
  // State.
  CHECK(sample(m, "castor_live") == 1);
  CHECK(sample(m, "castor_replay_eta_seconds") == 0);
  CHECK(sample(m, "castor_held_messages") == 0);
  CHECK(sample(m, "castor_held_messages_peak") >= 1);
  CHECK(sample(m, "castor_held_bytes") == 0);
  CHECK(sample(m, "castor_held_bytes_peak") >= 1);
  CHECK(sample(m, "castor_paused_partitions") == 0);
  // The last input's time is t0 + 2999 ms.
  CHECK(sample(m, "castor_watermark_seconds") == Approx((t0 + 2999) / 1000.0));
  // Live with nothing held: a quiet input is no lag (it was the watermark's age).
  CHECK(sample(m, "castor_watermark_lag_seconds") == 0);
  // Cycles: the histogram counts every cycle.
  auto cycles = sample(m, "castor_cycles_total");
  CHECK(cycles >= 30); // 3000 messages, at most 100 per cycle
  CHECK(sample(m, "castor_cycle_duration_seconds_count") == cycles);
  CHECK(sample(m, R"(castor_cycle_duration_seconds_bucket{le="+Inf"})") == cycles);
  CHECK(sample(m, "castor_cycle_duration_seconds_sum") > 0);
  // Nodes: the copy DAG's sources ran.
  CHECK(sample(m, R"(castor_node_runs_total{node="a"})") >= 1);
  CHECK(sample(m, R"(castor_node_runs_total{node="b"})") >= 1);

  // In-process: the same figures.
  auto find_topic = [&](const std::string& t) {
    for (auto& x : s.topics)
      if (x.topic == t)
        return x;
    FAIL("no topic " << t);
    return castor::topic_counters{};
  };
  CHECK(find_topic("a").consumed == 2000);
  CHECK(find_topic("out").delivered == 3000);
  REQUIRE(s.partitions.size() == 4);
  for (auto& p : s.partitions) {
    CHECK(p.caught_up);
    CHECK(p.high_watermark == p.position);
  }
  CHECK_FALSE(s.nodes.empty());

  castor::test::stop_and_wait(*fx.sys, pipeline);
}

TEST_CASE("a metrics address that cannot be bound is an error naming it", "[metrics]") {
  system_fixture fx;
  castor::pipeline_actor none;
  auto first = castor::metrics_endpoint::start(*fx.sys, none, "127.0.0.1:0");
  REQUIRE(first);
  auto taken = fmt::format("127.0.0.1:{}", (*first)->port());
  auto second = castor::metrics_endpoint::start(*fx.sys, none, taken);
  REQUIRE_FALSE(second);
  CHECK_THAT(castor::render(second.error()), Catch::Contains(taken));
}
