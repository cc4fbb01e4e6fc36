// SPDX-License-Identifier: Apache-2.0
#include "castor/testing/mock_cluster.hpp"

#include "castor/kafka/handles.hpp"
#include "castor/logger.hpp"

#include <fmt/format.h>
#include <librdkafka/rdkafka_mock.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace castor::testing {

struct mock_cluster::owner {
  kafka::handle_ptr client;
};

result<std::unique_ptr<mock_cluster>> mock_cluster::start(int brokers) {
  auto conf = kafka::make_conf({{"log_level", "3"}}, "mock cluster owner");
  if (!conf)
    return conf.error();
  auto owner = kafka::make_client(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!owner)
    return owner.error();
  auto* cluster = rd_kafka_mock_cluster_new(owner->get(), brokers);
  if (cluster == nullptr)
    return failure(ec::kafka_error, "cannot start librdkafka's mock cluster");
  // Metadata v4 lets clients ask for no auto-creation (consumers do by
  // default), as a real broker does; the mock's default version cannot.
  rd_kafka_mock_set_apiversion(cluster, 3 /* Metadata */, 0, 4);
  std::unique_ptr<mock_cluster> result{new mock_cluster};
  result->owner_ = std::make_unique<mock_cluster::owner>();
  result->owner_->client = std::move(*owner);
  result->cluster_ = cluster;
  result->bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster);
  return result;
}

struct mock_cluster::watcher {
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  std::thread thread;

  ~watcher() {
    {
      std::lock_guard guard{mutex};
      stop = true;
    }
    wake.notify_all();
    if (thread.joinable())
      thread.join();
  }
};

void mock_cluster::watch_retention(std::vector<kafka::topic_spec> topics) {
  if (watcher_ || topics.empty())
    return;
  auto conf = kafka::make_conf({{"bootstrap.servers", bootstrap_}, {"log_level", "3"}},
                               "retention watcher");
  if (!conf)
    return;
  auto client = kafka::make_client(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!client)
    return;
  watcher_ = std::make_unique<watcher>();
  auto* w = watcher_.get();
  w->thread = std::thread{[w, rk = std::move(*client), topics = std::move(topics)] {
    std::map<std::pair<std::string, int>, int64_t> low;
    std::unique_lock lock{w->mutex};
    while (!w->wake.wait_for(lock, std::chrono::seconds{2}, [w] { return w->stop; })) {
      lock.unlock();
      for (auto& t : topics)
        for (int p = 0; p < t.partitions; ++p) {
          int64_t lo = 0;
          int64_t hi = 0;
          if (rd_kafka_query_watermark_offsets(rk.get(), t.name.c_str(), p, &lo, &hi,
                                               1000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
          auto& seen = low[{t.name, p}];
          if (lo > seen)
            logger()->warn("broker: {}[{}] dropped offsets [{}, {}): the development "
                           "broker keeps at most 5 MB per partition (its data now "
                           "starts at {}, ends at {})",
                           t.name, p, seen, lo, lo, hi);
          seen = std::max(seen, lo);
        }
      lock.lock();
    }
  }};
}

mock_cluster::~mock_cluster() {
  watcher_.reset();
  // The cluster first: its owning client must outlive it.
  if (cluster_ != nullptr)
    rd_kafka_mock_cluster_destroy(cluster_);
}

failure mock_cluster::create_topic(const std::string& name, int partitions) {
  auto err = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return kafka::to_failure(
        err, fmt::format("creating topic '{}' with {} partitions", name, partitions));
  return {};
}

failure mock_cluster::set_down(bool down, int32_t id) {
  auto err = down ? rd_kafka_mock_broker_set_down(cluster_, id)
                  : rd_kafka_mock_broker_set_up(cluster_, id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return kafka::to_failure(
        err, fmt::format("setting broker {} {}", id, down ? "down" : "up"));
  return {};
}

failure mock_cluster::set_rtt(std::chrono::milliseconds rtt, int32_t id) {
  auto err = rd_kafka_mock_broker_set_rtt(cluster_, id, static_cast<int>(rtt.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return kafka::to_failure(err, fmt::format("setting the rtt of broker {}", id));
  return {};
}

void mock_cluster::push_request_errors(int16_t api, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  for (auto e : errors)
    codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(cluster_, api, codes.size(), codes.data());
}

void mock_cluster::push_retriable_errors(int count) {
  auto n = static_cast<size_t>(std::max(count, 0));
  push_request_errors(api_fetch,
                      std::vector<int>(n, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION));
  push_request_errors(api_produce,
                      std::vector<int>(n, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS));
}

} // namespace castor::testing
