// SPDX-License-Identifier: Apache-2.0
// The producer actor against librdkafka's mock cluster: records, deliveries,
// flushes, committable offsets.

#include "castor/producer.hpp"

#include <thread>

#include "fixtures.hpp"
#include "kafka_env.hpp"

using namespace castor::test;

namespace {

struct producer_feeder_log {
  int acks = 0;
  std::optional<uint64_t> undelivered;
  castor::pipeline_stats stats;
};

caf::behavior producer_feeder(caf::event_based_actor* self, castor::producer_actor target,
                              std::shared_ptr<producer_feeder_log> log) {
  return {
      [=](castor::record_batch_ptr batch) {
        self->request(target, caf::infinite, std::move(batch)).then([=](ack_atom) {
          ++log->acks;
        });
      },
      [=](castor::flush_atom, caf::timespan t) {
        self->request(target, caf::infinite, castor::flush_atom::value, t)
            .then([=](uint64_t n) { log->undelivered = n; });
      },
      [=](castor::stats_atom) {
        self->request(target, caf::infinite, castor::stats_atom::value)
            .then([=](castor::pipeline_stats& s) { log->stats = s; });
      },
  };
}

} // namespace

TEST_CASE(
    "producer actor: produces keys, tombstones, headers, partitions and timestamps, "
    "counts deliveries and flushes",
    "[actors][producer][integration]") {
  castor::test::kafka_env env{{{"out", 2}}};
  test_system ts;
  castor::producer_config cfg;
  cfg.properties = env.config().producer;
  cfg.event_driven = false;
  auto prod = ts.spawn(castor::producer, cfg);
  auto log = std::make_shared<producer_feeder_log>();
  auto feed = ts.spawn(producer_feeder, prod, log);
  auto batch = std::make_shared<castor::record_batch>();
  castor::producer_record keyed;
  keyed.topic = "out";
  keyed.key = "k";
  keyed.value = "v";
  keyed.partition = 1;
  keyed.time = t0;
  keyed.headers = {{"h", "x"}, {"empty", std::nullopt}};
  castor::producer_record tombstone;
  tombstone.topic = "out";
  tombstone.key = "k";
  tombstone.partition = 1;
  castor::producer_record unkeyed;
  unkeyed.topic = "out";
  unkeyed.value = "";
  unkeyed.partition = 0;
  batch->records = {keyed, tombstone, unkeyed};
  caf::anon_send(feed, batch);
  ts.run();
  CHECK(log->acks == 1);
  caf::anon_send(feed, castor::flush_atom::value, caf::timespan{5s});
  ts.run();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!log->undelivered && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    caf::anon_send(prod, castor::wake_atom::value);
    ts.sched->advance_time(10ms);
    ts.run();
  }
  REQUIRE(log->undelivered);
  CHECK(*log->undelivered == 0);
  caf::anon_send(feed, castor::stats_atom::value);
  ts.run();
  CHECK(log->stats.produced == 3);
  CHECK(log->stats.delivered == 3);
  CHECK(log->stats.delivery_errors == 0);
  auto out = env.read("out", 3);
  REQUIRE(out.size() == 3);
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  CHECK(out[0].partition == 0);
  CHECK_FALSE(out[0].key.has_value());
  CHECK(out[0].value == std::string{});
  CHECK(out[1].key == "k");
  CHECK(out[1].value == "v");
  CHECK(out[1].time_ms == castor::to_millis(t0));
  CHECK(castor::test::header_of(out[1], "h") == "x");
  CHECK_FALSE(castor::test::header_of(out[1], "empty").has_value());
  CHECK(out[2].key == "k");
  CHECK_FALSE(out[2].value.has_value()); // tombstone
}
