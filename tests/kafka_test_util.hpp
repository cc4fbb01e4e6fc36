// SPDX-License-Identifier: Apache-2.0
#pragma once

// Helpers for tests against librdkafka's mock cluster: a cluster with
// topics, a plain librdkafka producer to write input with chosen
// timestamps, and a plain consumer to read what castor produced.

#include "castor/kafka.hpp"
#include "castor/pipeline.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace castor::test {

struct record {
  record() = default;
  record(std::string topic, int32_t partition, std::optional<std::string> key,
         std::optional<std::string> value, int64_t time_ms,
         std::vector<header> headers = {})
      : topic(std::move(topic)), partition(partition), key(std::move(key)),
        value(std::move(value)), time_ms(time_ms), headers(std::move(headers)) {}

  std::string topic;
  int32_t partition = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  int64_t time_ms = 0;
  std::vector<header> headers;
  int64_t offset = -1; // set when read back
};

class kafka_env {
public:
  explicit kafka_env(const std::vector<std::pair<std::string, int>>& topics) {
    auto started = kafka::mock_cluster::start();
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
    auto conf = kafka::make_conf({{"bootstrap.servers", bootstrap()}, {"linger.ms", "5"}},
                                 "test producer");
    REQUIRE(conf);
    auto rk = kafka::make_client(RD_KAFKA_PRODUCER, std::move(*conf));
    REQUIRE(rk);
    for (auto& r : records) {
      rd_kafka_headers_t* hdrs = nullptr;
      if (!r.headers.empty()) {
        hdrs = rd_kafka_headers_new(r.headers.size());
        for (auto& h : r.headers)
          rd_kafka_header_add(hdrs, h.name.c_str(), -1,
                              h.value ? h.value->data() : nullptr,
                              h.value ? static_cast<ssize_t>(h.value->size()) : 0);
      }
      const void* key = r.key ? r.key->data() : nullptr;
      size_t key_size = r.key ? r.key->size() : 0;
      void* value = r.value ? const_cast<char*>(r.value->data()) : nullptr;
      size_t value_size = r.value ? r.value->size() : 0;
      int32_t partition = r.partition;
      int64_t time_ms = r.time_ms;
      rd_kafka_resp_err_t err;
      while (true) {
        err = rd_kafka_producev(
            rk->get(), RD_KAFKA_V_TOPIC(r.topic.c_str()), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_size),
            RD_KAFKA_V_VALUE(value, value_size), RD_KAFKA_V_TIMESTAMP(time_ms),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
          break;
        rd_kafka_poll(rk->get(), 10);
      }
      REQUIRE(err == RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    REQUIRE(rd_kafka_flush(rk->get(), 30000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  /// Reads `topic` from the beginning until `count` records arrived (or
  /// `timeout` passed); returns them in (partition, offset) order.
  std::vector<record> read(const std::string& topic, size_t count,
                           std::chrono::milliseconds timeout = std::chrono::seconds{20}) {
    auto conf = kafka::make_conf({{"bootstrap.servers", bootstrap()},
                                  {"group.id", "castor-test-reader"},
                                  {"enable.auto.commit", "false"},
                                  {"fetch.wait.max.ms", "10"}},
                                 "test consumer");
    REQUIRE(conf);
    auto rk = kafka::make_client(RD_KAFKA_CONSUMER, std::move(*conf));
    REQUIRE(rk);
    rd_kafka_poll_set_consumer(rk->get());
    auto partitions = kafka::partition_count(rk->get(), topic, std::chrono::seconds{10});
    REQUIRE(partitions);
    kafka::partition_list_ptr list{rd_kafka_topic_partition_list_new(*partitions)};
    for (int32_t p = 0; p < *partitions; ++p)
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    REQUIRE(rd_kafka_assign(rk->get(), list.get()) == RD_KAFKA_RESP_ERR_NO_ERROR);
    std::vector<record> result;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (result.size() < count && std::chrono::steady_clock::now() < deadline) {
      kafka::message_ptr m{rd_kafka_consumer_poll(rk->get(), 50)};
      if (!m || m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        continue;
      record r;
      r.topic = topic;
      r.partition = m->partition;
      r.offset = m->offset;
      if (m->key != nullptr)
        r.key = std::string{static_cast<const char*>(m->key), m->key_len};
      if (m->payload != nullptr)
        r.value = std::string{static_cast<const char*>(m->payload), m->len};
      r.time_ms = rd_kafka_message_timestamp(m.get(), nullptr);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m.get(), &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* val = nullptr;
        size_t size = 0;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i)
          r.headers.push_back(header{name, val != nullptr
                                               ? std::optional<std::string>{std::string{
                                                     static_cast<const char*>(val), size}}
                                               : std::nullopt});
      }
      result.push_back(std::move(r));
    }
    rd_kafka_consumer_close(rk->get());
    return result;
  }

  /// The committed offsets of `group` on `topic`'s partitions (-1001
  /// where none).
  std::vector<int64_t> committed(const std::string& group, const std::string& topic,
                                 int partitions) {
    auto conf = kafka::make_conf(
        {{"bootstrap.servers", bootstrap()}, {"group.id", group}}, "test committed");
    REQUIRE(conf);
    auto rk = kafka::make_client(RD_KAFKA_CONSUMER, std::move(*conf));
    REQUIRE(rk);
    kafka::partition_list_ptr list{rd_kafka_topic_partition_list_new(partitions)};
    for (int32_t p = 0; p < partitions; ++p)
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
    REQUIRE(rd_kafka_committed(rk->get(), list.get(), 10000) ==
            RD_KAFKA_RESP_ERR_NO_ERROR);
    std::vector<int64_t> result;
    for (int i = 0; i < list->cnt; ++i)
      result.push_back(list->elems[i].offset);
    rd_kafka_consumer_close(rk->get());
    return result;
  }

  std::unique_ptr<kafka::mock_cluster> cluster;
};

/// The value of header `name`, if any.
inline std::optional<std::string> header_of(const record& r, const std::string& name) {
  for (auto& h : r.headers)
    if (h.name == name)
      return h.value;
  return std::nullopt;
}

} // namespace castor::test
